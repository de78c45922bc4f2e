//! Routes to unit terminals: the newest `ReceiveOrders` stream of each unit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use patrol_dispatcher::Order;
use patrol_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::Status;

use crate::convert::to_wire;
use crate::error::ServerError;
use crate::telemetry as m;

/// Capacity of each terminal's order queue. When full the order is not lost: it
/// stays the unit's current order and is re-sent when the terminal reconnects.
pub const ORDER_QUEUE: usize = 32;

/// The sending side of a terminal's order stream.
pub type OrderTx = mpsc::Sender<Result<pb::DispatchOrder, Status>>;

struct Route {
    connection: u64,
    tx: OrderTx,
}

/// Every connected terminal, by unit id.
#[derive(Default)]
pub struct OrderRoutes {
    routes: Mutex<HashMap<String, Route>>,
    next_connection: AtomicU64,
}

impl OrderRoutes {
    fn routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes `order` to its unit's terminal, if one is connected. A full
    /// queue drops the push (counted): the order stays current and is re-sent
    /// on reconnect.
    pub fn deliver(&self, order: &Order, state: pb::OrderState) {
        let routes = self.routes();
        let Some(route) = routes.get(&order.unit_id) else {
            return;
        };
        match route.tx.try_send(Ok(to_wire::order(order, state))) {
            Ok(()) => metrics::counter!(m::ORDERS_DELIVERED).increment(1),
            Err(_) => {
                metrics::counter!(m::ORDERS_QUEUE_FULL).increment(1);
                tracing::warn!(unit = %order.unit_id, order = %order.id, "order queue full or closed; the order stays current for the next ReceiveOrders");
            }
        }
    }

    /// Opens `unit_id`'s route, replacing (and aborting) an older one; returns
    /// the connection number. Call with the core lock held, so no order falls
    /// between reading the current order and opening the route.
    pub fn open(&self, unit_id: &str, tx: OrderTx) -> u64 {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let replaced = self
            .routes()
            .insert(unit_id.to_string(), Route { connection, tx });
        if let Some(old) = replaced {
            // The older terminal must not reconnect and take the unit back.
            let _ = old.tx.try_send(Err(ServerError::Replaced {
                unit_id: unit_id.to_string(),
            }
            .into()));
        }
        connection
    }

    /// Removes a route if it is still the one opened as `connection`.
    pub fn close(&self, unit_id: &str, connection: u64) {
        let mut routes = self.routes();
        if routes
            .get(unit_id)
            .is_some_and(|r| r.connection == connection)
        {
            routes.remove(unit_id);
        }
    }

    /// How many units have a connected terminal.
    pub fn len(&self) -> usize {
        self.routes().len()
    }

    /// Whether no unit has a connected terminal.
    pub fn is_empty(&self) -> bool {
        self.routes().is_empty()
    }

    /// The units with a connected terminal.
    pub fn unit_ids(&self) -> Vec<String> {
        self.routes().keys().cloned().collect()
    }

    /// Ends every stream, telling terminals to reconnect.
    pub fn close_all(&self) {
        let routes = std::mem::take(&mut *self.routes());
        for route in routes.into_values() {
            let _ = route
                .tx
                .try_send(Err(ServerError::ShuttingDown("reconnect").into()));
        }
    }
}
