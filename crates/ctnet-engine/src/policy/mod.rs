//! Network policy decisions: which set elements policies need (`compile`), pure.

pub mod compile;

pub use compile::{compile, compile_member, Compiled, Entry};
