//! fabric (engine under construction)
pub mod protocol;
pub mod userbuf;
