//! Storage node: glommio executors each owning a shard log, RPC server and client.
