//! Sans-I/O metadata state machine: object, bucket, multipart, key and node records.
