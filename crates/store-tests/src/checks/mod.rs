//! The conformance checks, one `pub async fn` each, run by [`crate::conformance_tests!`].

mod control;
mod isolation;
mod records;
mod tenant;
mod transactions;

pub use control::*;
pub use isolation::*;
pub use records::*;
pub use tenant::*;
pub use transactions::*;
