//! Storage-node wire protocol: flatbuffers schemas, generated code and frame codec (sans-I/O).
