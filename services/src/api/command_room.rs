use std::sync::Arc;

use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::shared::command_room_server::CommandRoom;
use patrol_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert::from_wire;
use crate::hub::Hub;
use crate::watch::Subscriber;

pub struct CommandRoomApi {
    hub: Arc<Hub>,
}

impl CommandRoomApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[tonic::async_trait]
impl CommandRoom for CommandRoomApi {
    type WatchStream = ReceiverStream<Result<EncodedWatchEvent, Status>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        let bbox = from_wire::bbox("bbox", req.bbox.as_ref())?;
        let (tx, rx) = mpsc::channel(self.hub.config.watch.subscriber_buffer);
        tokio::spawn(
            Subscriber::new(self.hub.clone(), bbox, tx).run(req.resume_after_seq, req.resume_epoch),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
