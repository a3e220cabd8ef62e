//! One module per resource.

pub mod audit;
pub mod installs;
pub mod members;
pub mod orgs;
pub mod publish;
pub mod registry;
pub mod secrets;
pub mod system;
