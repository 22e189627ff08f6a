//! The stats table: one declaration of every pool and server counter.
