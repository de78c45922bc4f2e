use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use patrol_proto::shared::EncodedWatchEvent;
use patrol_proto::shared::command_room_server::CommandRoom;
use patrol_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::origin;
use crate::auth::Lapsing;
use crate::convert::from_wire;
use crate::hub::Hub;
use crate::limits::{WatchPermit, caller_key};
use crate::watch::Subscriber;

pub struct CommandRoomApi {
    hub: Arc<Hub>,
}

impl CommandRoomApi {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

/// A Watch response stream; it holds the subscriber's place in the limits,
/// given back when tonic drops it (the call ended or the client vanished).
pub struct WatchStream {
    inner: Lapsing<ReceiverStream<Result<EncodedWatchEvent, Status>>>,
    _permit: WatchPermit,
}

impl Stream for WatchStream {
    type Item = Result<EncodedWatchEvent, Status>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[tonic::async_trait]
impl CommandRoom for CommandRoomApi {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let origin = origin(&self.hub, &request)?;
        let lapsed = crate::auth::lapsed(&request);
        let req = request.into_inner();
        let bbox = from_wire::bbox("bbox", req.bbox.as_ref())?;
        let permit = self.hub.limits().open_watch(&caller_key(&origin.actor))?;
        let (tx, rx) = mpsc::channel(self.hub.config.watch.subscriber_buffer);
        tokio::spawn(
            Subscriber::new(self.hub.clone(), bbox, tx).run(req.resume_after_seq, req.resume_epoch),
        );
        Ok(Response::new(WatchStream {
            inner: Lapsing::with(ReceiverStream::new(rx), lapsed),
            _permit: permit,
        }))
    }
}
