//! One module per resource.

pub mod audit;
pub mod breakglass;
pub mod executions;
pub mod installs;
pub mod invoke;
pub mod keys;
pub mod members;
pub mod orgs;
pub mod publish;
pub mod registry;
pub mod secrets;
pub mod system;
pub mod usage;
