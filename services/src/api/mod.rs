//! The four gRPC services over the [`Hub`](crate::hub::Hub). Handlers convert
//! the request (`convert::from_wire`), run one command on the core under its
//! lock, and convert the answer back; errors go through `status`.

mod cameras;
mod command_room;
mod incidents;
mod units;

pub use cameras::CameraApi;
pub use command_room::CommandRoomApi;
pub use incidents::IncidentApi;
pub use units::UnitApi;
