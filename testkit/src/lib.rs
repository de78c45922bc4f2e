//! Real processes for tests and the bench, started the same way everywhere.
//!
//! - [`Patrold`] spawns the `patrold` binary with `--ready-file` and returns
//!   once the node wrote the addresses it bound (so callers pass
//!   `--grpc 127.0.0.1:0 --http 127.0.0.1:0` and never scrape logs or sleep);
//!   if the child exits first, the error carries the tail of its stderr.
//! - [`RedisServer`] is one `redis-server` on a free loopback port with its own
//!   directory and AOF on (as `deploy/redis.conf`); it can be killed with
//!   SIGKILL and restarted on the same port and data. Start-up is awaited on
//!   redis' own systemd notification (`READY=1` on `NOTIFY_SOCKET`), which it
//!   sends once its AOF is loaded.
//! - [`RedisCluster`] is three of them as a Redis Cluster, slots split in three.
//! - [`free_port`] finds a loopback port for processes that cannot take
//!   port 0.
//!
//! No dependency on the server crates: this only starts and stops processes.
//!
//! # Layout
//!
//! - `patrold`: [`Patrold`], the ready-file handshake, signals.
//! - `redis`: [`RedisServer`], [`RedisCluster`], and the few RESP commands
//!   they need ([`RedisServer::command`]).
//! - `child`: stderr capture and temporary directories shared by both.

mod child;
mod patrold;
mod redis;

use std::net::TcpListener;

pub use patrold::Patrold;
pub use redis::{RedisCluster, RedisServer, Reply};

/// A loopback port nothing listens on now, and below 55000 with `port + 10000`
/// free too (a Redis Cluster node's bus port). It is released before it is
/// returned, so another process can take it first: callers that can pass
/// port 0 should.
pub fn free_port() -> std::io::Result<u16> {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_and_its_bus_port_can_be_bound() {
        let port = free_port().unwrap();
        assert!(port < 55_000, "{port}");
        TcpListener::bind(("127.0.0.1", port)).unwrap();
        TcpListener::bind(("127.0.0.1", port + 10_000)).unwrap();
    }
}
