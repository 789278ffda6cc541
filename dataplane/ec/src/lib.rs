//! Erasure coding: one codec trait, ISA-L and reed-solomon-simd backends, streaming stripes.
