//! Raw bindings to ISA-L's erasure-code API (Debian libisal-dev).
