//! Conversion between wire messages (`patrol_proto::v1`) and domain types
//! (`patrol_dispatcher`): protobuf types stop here. One module per direction.
//!
//! - [`from_wire`]: requests into domain values; a missing or unknown field is an
//!   `InvalidArgument` naming it, never a panic.
//! - [`to_wire`]: domain values and events into replies and stream events.

pub mod from_wire;
pub mod to_wire;
