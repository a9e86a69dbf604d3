//! Controllable TCP proxies on a network's p2p links, for partition and
//! slow-link faults.
//!
//! With [`crate::TestnetConfig::link_proxies`] on, node `i` never dials node
//! `j`'s p2p port: its `persistent_peers` name a proxy for the ordered pair
//! `(i, j)` that forwards to `j`. PEX is off on such networks, so no node
//! learns a direct address. Each proxy can be cut (live connections closed
//! both ways, new ones refused until healed), slowed by a latency per chunk
//! (both ways) and capped in bandwidth (a token bucket per direction of each
//! connection).
//!
//! CometBFT's secret connection authenticates the peer's node id end to end,
//! so a proxy that only forwards bytes is invisible to it.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{Result, TestnetError};

/// Largest chunk read and forwarded at once.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks in flight inside one direction's delay line; bounds the memory a
/// slow link holds (the sender then blocks, as on a real full link).
const DELAY_LINE_CHUNKS: usize = 256;
/// Burst a bandwidth cap allows after an idle spell, as a share of a
/// second's budget (1/10: 100 ms worth of bytes).
const BURST_DIVISOR: u64 = 10;

/// What one proxy is told to do; read for every chunk, so changes apply to
/// live connections at once.
#[derive(Debug, Default)]
struct Controls {
    cut: AtomicBool,
    latency_ms: AtomicU64,
    /// Bytes per second; 0 means no cap.
    bandwidth: AtomicU64,
    /// Live forwarded connections.
    live: AtomicUsize,
    /// Connections accepted and forwarded since the start.
    forwarded: AtomicUsize,
}

/// One TCP proxy on 127.0.0.1 forwarding every connection to `target`.
/// Dropping it stops accepting and closes every connection.
#[derive(Debug)]
pub struct LinkProxy {
    port: u16,
    target: SocketAddr,
    controls: Arc<Controls>,
    /// Bumped on every cut; each connection closes when it changes.
    epoch: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl LinkProxy {
    /// Binds a free loopback port and starts forwarding to `target`. Must
    /// be called inside a tokio runtime; the proxy's tasks run on it.
    pub async fn start(target: SocketAddr) -> Result<LinkProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| TestnetError::io(format!("binding a proxy to {target}"), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| TestnetError::io("reading a proxy's port".to_string(), e))?
            .port();
        let controls = Arc::new(Controls::default());
        let (epoch, _) = watch::channel(0u64);
        let task = tokio::spawn(accept_loop(
            listener,
            target,
            controls.clone(),
            epoch.clone(),
        ));
        Ok(LinkProxy {
            port,
            target,
            controls,
            epoch,
            task,
        })
    }

    /// The port to dial instead of the target.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where connections are forwarded.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Closes every live connection both ways and refuses new ones until
    /// [`LinkProxy::heal`].
    pub fn cut(&self) {
        self.controls.cut.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    /// Accepts and forwards connections again.
    pub fn heal(&self) {
        self.controls.cut.store(false, Ordering::SeqCst);
    }

    /// True while cut.
    pub fn is_cut(&self) -> bool {
        self.controls.cut.load(Ordering::SeqCst)
    }

    /// Delays every chunk by `latency`, each way (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.controls.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Caps each direction of each connection at `bytes_per_second`
    /// (`None`: no cap).
    pub fn set_bandwidth(&self, bytes_per_second: Option<u64>) {
        self.controls
            .bandwidth
            .store(bytes_per_second.unwrap_or(0), Ordering::SeqCst);
    }

    /// Connections being forwarded now.
    pub fn live_connections(&self) -> usize {
        self.controls.live.load(Ordering::SeqCst)
    }

    /// Connections forwarded since the proxy started.
    pub fn forwarded_connections(&self) -> usize {
        self.controls.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Live connections watch the epoch; a closed channel ends them too.
        self.epoch.send_modify(|e| *e += 1);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    controls: Arc<Controls>,
    epoch: watch::Sender<u64>,
) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off, keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if controls.cut.load(Ordering::SeqCst) {
            // Refused: the dialer sees the connection closed at once.
            drop(inbound);
            continue;
        }
        let controls = controls.clone();
        let mut cut = epoch.subscribe();
        cut.mark_unchanged();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            controls.live.fetch_add(1, Ordering::SeqCst);
            controls.forwarded.fetch_add(1, Ordering::SeqCst);
            let (in_read, in_write) = inbound.into_split();
            let (out_read, out_write) = outbound.into_split();
            // Either direction ending (EOF, error) or a cut closes both:
            // the halves are dropped when this select returns.
            tokio::select! {
                _ = pump(in_read, out_write, &controls) => {}
                _ = pump(out_read, in_write, &controls) => {}
                _ = cut.changed() => {}
            }
            controls.live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Forwards `from` to `to` through a delay line: the reader stamps each
/// chunk with when it may leave (after the bandwidth cap's wait, plus the
/// latency), the writer holds it until then. Latency thus delays bytes
/// without also limiting throughput.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, controls: &Controls) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(DELAY_LINE_CHUNKS);
    let reader = async move {
        let mut bucket = TokenBucket::default();
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let rate = controls.bandwidth.load(Ordering::SeqCst);
            bucket.take(n as u64, rate).await;
            let latency = Duration::from_millis(controls.latency_ms.load(Ordering::SeqCst));
            if tx
                .send((Instant::now() + latency, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    // The writer ends once the reader has ended and the line is drained.
    tokio::join!(reader, writer);
}

/// A token bucket as a virtual clock: `next` is when the bytes taken so
/// far will have been paid for at the current rate.
#[derive(Debug, Default)]
struct TokenBucket {
    next: Option<Instant>,
}

impl TokenBucket {
    /// Waits until `bytes` fit under `rate` bytes per second (0: no cap).
    async fn take(&mut self, bytes: u64, rate: u64) {
        if rate == 0 {
            self.next = None;
            return;
        }
        let now = Instant::now();
        let burst = Duration::from_secs(1) / u32::try_from(BURST_DIVISOR).unwrap_or(10);
        // Idle time earns at most `burst` worth of credit.
        let start = match self.next {
            Some(next) if next + burst > now => next,
            _ => now.checked_sub(burst).unwrap_or(now),
        };
        let cost = Duration::from_nanos(
            bytes
                .saturating_mul(1_000_000_000)
                .checked_div(rate)
                .unwrap_or(0),
        );
        let next = start + cost;
        self.next = Some(next);
        if next > now {
            tokio::time::sleep_until(next).await;
        }
    }
}

/// One proxy per ordered pair of nodes: `(i, j)` is what node `i` dials to
/// reach node `j`.
#[derive(Debug, Default)]
pub struct LinkProxies {
    links: BTreeMap<(usize, usize), LinkProxy>,
}

impl LinkProxies {
    /// Starts a proxy for every ordered pair of distinct nodes, forwarding
    /// to `p2p_ports[j]` on 127.0.0.1.
    pub async fn start(p2p_ports: &[u16]) -> Result<LinkProxies> {
        let mut links = BTreeMap::new();
        for i in 0..p2p_ports.len() {
            for (j, port) in p2p_ports.iter().enumerate() {
                if i != j {
                    let target = SocketAddr::from(([127, 0, 0, 1], *port));
                    links.insert((i, j), LinkProxy::start(target).await?);
                }
            }
        }
        Ok(LinkProxies { links })
    }

    /// The proxy node `from` dials to reach node `to`.
    pub fn link(&self, from: usize, to: usize) -> Result<&LinkProxy> {
        self.links.get(&(from, to)).ok_or_else(|| {
            TestnetError::InvalidConfig(format!("no link proxy from node{from} to node{to}"))
        })
    }

    /// Every ordered pair and its proxy.
    pub fn iter(&self) -> impl Iterator<Item = ((usize, usize), &LinkProxy)> {
        self.links.iter().map(|(k, v)| (*k, v))
    }

    /// Cuts every link between nodes in different `groups`, both ways;
    /// links inside a group stay as they are.
    pub fn partition(&self, groups: &[&[usize]]) -> Result<()> {
        let group_of = |node: usize| groups.iter().position(|g| g.contains(&node));
        // A node in no group is refused rather than silently left whole.
        if let Some(&(i, _)) = self.links.keys().find(|(i, _)| group_of(*i).is_none()) {
            return Err(TestnetError::InvalidConfig(format!(
                "node{i} is in no partition group"
            )));
        }
        for (&(i, j), proxy) in &self.links {
            if group_of(i) != group_of(j) {
                proxy.cut();
            }
        }
        Ok(())
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for proxy in self.links.values() {
            proxy.heal();
        }
    }

    /// Sets every link's latency and bandwidth cap.
    pub fn slow_all(&self, latency: Duration, bytes_per_second: Option<u64>) {
        for proxy in self.links.values() {
            proxy.set_latency(latency);
            proxy.set_bandwidth(bytes_per_second);
        }
    }

    /// Live connections between nodes `a` and `b`, through either
    /// direction's proxy (CometBFT keeps one of the two dials).
    pub fn live_between(&self, a: usize, b: usize) -> usize {
        [(a, b), (b, a)]
            .iter()
            .filter_map(|k| self.links.get(k))
            .map(LinkProxy::live_connections)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn dial(proxy: &LinkProxy) -> TcpStream {
        TcpStream::connect(("127.0.0.1", proxy.port()))
            .await
            .unwrap()
    }

    /// Writes `data` and reads back as many bytes.
    async fn round_trip(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
        let (mut r, mut w) = stream.split();
        let mut back = vec![0u8; data.len()];
        let (wrote, read) = tokio::join!(w.write_all(data), r.read_exact(&mut back));
        wrote.unwrap();
        read.unwrap();
        back
    }

    /// True once the peer has closed `stream` (EOF or reset) within 5 s.
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn bytes_pass_intact_both_ways() {
        let proxy = LinkProxy::start(echo_server().await).await.unwrap();
        let mut stream = dial(&proxy).await;
        // 1 MiB of a non-repeating pattern: reordering or loss would show.
        let data: Vec<u8> = (0u32..1 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert_eq!(round_trip(&mut stream, &data).await, data);
        assert_eq!(proxy.live_connections(), 1);
        assert_eq!(proxy.forwarded_connections(), 1);
    }

    #[tokio::test]
    async fn a_cut_closes_live_connections_and_refuses_new_ones_until_healed() {
        let proxy = LinkProxy::start(echo_server().await).await.unwrap();
        let mut live = dial(&proxy).await;
        assert_eq!(round_trip(&mut live, b"before").await, b"before");

        proxy.cut();
        assert!(
            closed(&mut live).await,
            "the live connection survived a cut"
        );
        let mut refused = dial(&proxy).await;
        assert!(
            closed(&mut refused).await,
            "a new connection got through a cut"
        );
        assert!(proxy.is_cut());

        proxy.heal();
        let mut healed = dial(&proxy).await;
        assert_eq!(round_trip(&mut healed, b"after").await, b"after");
        assert_eq!(proxy.forwarded_connections(), 2);
    }

    #[tokio::test]
    async fn latency_delays_each_way() {
        let proxy = LinkProxy::start(echo_server().await).await.unwrap();
        let mut stream = dial(&proxy).await;
        assert_eq!(round_trip(&mut stream, b"warm").await, b"warm");
        proxy.set_latency(Duration::from_millis(150));
        let began = std::time::Instant::now();
        assert_eq!(round_trip(&mut stream, b"ping").await, b"ping");
        // There and back: two delayed chunks. A lower bound only (the
        // proxy cannot deliver early); no upper bound on a shared machine.
        assert!(
            began.elapsed() >= Duration::from_millis(300),
            "round trip took {:?}",
            began.elapsed()
        );
    }

    #[tokio::test]
    async fn a_bandwidth_cap_spreads_bytes_over_time() {
        let proxy = LinkProxy::start(echo_server().await).await.unwrap();
        proxy.set_bandwidth(Some(64 * 1024));
        let mut stream = dial(&proxy).await;
        let data = vec![7u8; 128 * 1024];
        let began = std::time::Instant::now();
        assert_eq!(round_trip(&mut stream, &data).await, data);
        // 128 KiB at 64 KiB/s each way is ~2 s; the burst allowance is
        // 100 ms per direction. Again a lower bound only.
        assert!(
            began.elapsed() >= Duration::from_millis(1_700),
            "128 KiB crossed a 64 KiB/s link in {:?}",
            began.elapsed()
        );
    }

    #[tokio::test]
    async fn a_partition_cuts_exactly_the_links_across_groups() {
        let target = echo_server().await;
        let proxies = LinkProxies::start(&[target.port(); 4]).await.unwrap();
        proxies.partition(&[&[0], &[1, 2, 3]]).unwrap();
        for ((i, j), proxy) in proxies.iter() {
            assert_eq!(proxy.is_cut(), (i == 0) != (j == 0), "link {i}->{j}");
        }
        proxies.heal_all();
        assert!(proxies.iter().all(|(_, p)| !p.is_cut()));
        proxies.partition(&[&[0, 1], &[2, 3]]).unwrap();
        assert!(proxies.link(1, 2).unwrap().is_cut());
        assert!(proxies.link(3, 1).unwrap().is_cut());
        assert!(!proxies.link(0, 1).unwrap().is_cut());
        assert!(!proxies.link(3, 2).unwrap().is_cut());
        assert!(proxies.partition(&[&[0, 1]]).is_err());
    }
}
