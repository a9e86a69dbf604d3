//! The ABCI socket server: CometBFT's length-delimited protobuf protocol
//! over TCP, dispatching each request to one of the four services that
//! `tower_abci::v038::split` builds.
//!
//! tower-abci's own `Server::listen_tcp` leaves Nagle's algorithm on and
//! writes each response and the `Flush` that follows it as separate
//! segments. The second small segment then waits for the first one's ACK,
//! which CometBFT's kernel delays by up to 40 ms: every synchronous ABCI call
//! (PrepareProposal, ProcessProposal, FinalizeBlock, Commit) paid that stall,
//! which capped a 4-validator loopback network at about 6 blocks/s with the
//! CPUs idle. This server sets `TCP_NODELAY`, writes a flush's responses in
//! one go, and bounds frame sizes so a broken peer cannot make it allocate
//! without limit. It keeps tower-abci's ordering rules: responses go out in
//! request order, and `Flush` is answered after everything before it.

use std::{net::SocketAddr, path::PathBuf};

use bytes::{Buf, BytesMut};
use futures::{
    future::{BoxFuture, FutureExt, TryFutureExt},
    stream::{FuturesOrdered, StreamExt},
    SinkExt,
};
use tendermint::{
    abci::MethodKind,
    v0_38::abci::{
        ConsensusRequest, ConsensusResponse, InfoRequest, InfoResponse, MempoolRequest,
        MempoolResponse, Request, Response, SnapshotRequest, SnapshotResponse,
    },
};
use tendermint_proto::v0_38::abci as pb;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream, UnixListener, UnixStream},
};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tower::{Service, ServiceExt};

/// Errors from one ABCI connection or the listener.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest ABCI message accepted or sent. CometBFT's hard block limit is
/// 100 MB; FinalizeBlock and PrepareProposal carry at most one block of txs.
pub const MAX_FRAME_BYTES: usize = 128 * 1024 * 1024;

/// Where the ABCI server listens: TCP, or a Unix domain socket when CometBFT
/// runs on the same host (cheaper per message: no TCP stack, which matters
/// for CheckTx, one round trip per transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `127.0.0.1:26658` or `tcp://127.0.0.1:26658`.
    Tcp(SocketAddr),
    /// `unix:///path/to/abci.sock`.
    Unix(PathBuf),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err("unix:// needs a socket path, e.g. unix:///run/weft/abci.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let addr = s.strip_prefix("tcp://").unwrap_or(s);
        addr.parse().map(ListenAddr::Tcp).map_err(|e| {
            format!("`{s}` is neither host:port, tcp://host:port nor unix:///path: {e}")
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "tcp://{a}"),
            ListenAddr::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// A listening socket of either kind.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// One accepted connection of either kind.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    async fn bind(addr: &ListenAddr) -> Result<Self, BoxError> {
        Ok(match addr {
            ListenAddr::Tcp(a) => {
                let l = TcpListener::bind(a).await?;
                tracing::info!(addr = %l.local_addr()?, "ABCI server listening");
                Listener::Tcp(l)
            }
            ListenAddr::Unix(path) => {
                // A socket file left by a previous run would make bind fail;
                // anything else at that path is not ours to delete.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    if meta.file_type().is_socket() {
                        std::fs::remove_file(path)?;
                    } else {
                        return Err(format!(
                            "{} exists and is not a socket; refusing to replace it",
                            path.display()
                        )
                        .into());
                    }
                }
                let l = UnixListener::bind(path)?;
                tracing::info!(path = %path.display(), "ABCI server listening");
                Listener::Unix(l)
            }
        })
    }

    async fn accept(&self) -> std::io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::Unix(s), "unix".into()))
            }
        }
    }
}

/// Serves ABCI on `addr` until the listener fails; each CometBFT connection
/// (consensus, mempool, info, snapshot) gets its own task.
pub async fn serve<C, M, I, S>(
    addr: &ListenAddr,
    consensus: C,
    mempool: M,
    info: I,
    snapshot: S,
) -> Result<(), BoxError>
where
    C: Service<ConsensusRequest, Response = ConsensusResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    C::Future: Send + 'static,
    M: Service<MempoolRequest, Response = MempoolResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    M::Future: Send + 'static,
    I: Service<InfoRequest, Response = InfoResponse, Error = BoxError> + Clone + Send + 'static,
    I::Future: Send + 'static,
    S: Service<SnapshotRequest, Response = SnapshotResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let listener = Listener::bind(addr).await?;
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep serving the
                // connections we have, try again shortly.
                tracing::error!(error = %e, "accepting an ABCI connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let connection = Connection {
            consensus: consensus.clone(),
            mempool: mempool.clone(),
            info: info.clone(),
            snapshot: snapshot.clone(),
        };
        tokio::spawn(async move {
            tracing::debug!(%peer, "ABCI connection accepted");
            if let Err(e) = connection.run(socket).await {
                tracing::error!(%peer, error = %e, "ABCI connection ended with an error");
            }
        });
    }
}

struct Connection<C, M, I, S> {
    consensus: C,
    mempool: M,
    info: I,
    snapshot: S,
}

impl<C, M, I, S> Connection<C, M, I, S>
where
    C: Service<ConsensusRequest, Response = ConsensusResponse, Error = BoxError> + Send + 'static,
    C::Future: Send + 'static,
    M: Service<MempoolRequest, Response = MempoolResponse, Error = BoxError> + Send + 'static,
    M::Future: Send + 'static,
    I: Service<InfoRequest, Response = InfoResponse, Error = BoxError> + Send + 'static,
    I::Future: Send + 'static,
    S: Service<SnapshotRequest, Response = SnapshotResponse, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    async fn run(self, socket: Stream) -> Result<(), BoxError> {
        match socket {
            Stream::Tcp(socket) => {
                socket.set_nodelay(true)?;
                let (read, write) = socket.into_split();
                self.serve(read, write).await
            }
            Stream::Unix(socket) => {
                let (read, write) = socket.into_split();
                self.serve(read, write).await
            }
        }
    }

    async fn serve(
        mut self,
        read: impl AsyncRead + Unpin,
        write: impl AsyncWrite + Unpin,
    ) -> Result<(), BoxError> {
        let mut requests = FramedRead::new(read, Codec);
        let mut responses_out = FramedWrite::new(write, Codec);
        let mut pending: FuturesOrdered<BoxFuture<'static, Result<Response, BoxError>>> =
            FuturesOrdered::new();
        loop {
            tokio::select! {
                request = requests.next() => {
                    let Some(request) = request.transpose()? else {
                        return Ok(());
                    };
                    let request = Request::try_from(request)?;
                    match request.kind() {
                        MethodKind::Flush => {
                            // Everything asked before the flush is answered,
                            // in order, then the flush itself: one write.
                            while let Some(response) = pending.next().await {
                                responses_out.feed(pb::Response::from(response?)).await?;
                            }
                            responses_out.send(pb::Response::from(Response::Flush)).await?;
                        }
                        MethodKind::Consensus => {
                            let request = ConsensusRequest::try_from(request)?;
                            let call = self.consensus.ready().await?.call(request);
                            pending.push_back(call.map_ok(Response::from).boxed());
                        }
                        MethodKind::Mempool => {
                            let request = MempoolRequest::try_from(request)?;
                            let call = self.mempool.ready().await?.call(request);
                            pending.push_back(call.map_ok(Response::from).boxed());
                        }
                        MethodKind::Info => {
                            let request = InfoRequest::try_from(request)?;
                            let call = self.info.ready().await?.call(request);
                            pending.push_back(call.map_ok(Response::from).boxed());
                        }
                        MethodKind::Snapshot => {
                            let request = SnapshotRequest::try_from(request)?;
                            let call = self.snapshot.ready().await?.call(request);
                            pending.push_back(call.map_ok(Response::from).boxed());
                        }
                    }
                }
                response = pending.next(), if !pending.is_empty() => {
                    if let Some(response) = response {
                        // Answers already done behind this one (a burst of
                        // CheckTx) go out in the same write: one syscall
                        // here and one read on CometBFT's side, not one each.
                        responses_out.feed(pb::Response::from(response?)).await?;
                        while let Some(Some(next)) = pending.next().now_or_never() {
                            responses_out.feed(pb::Response::from(next?)).await?;
                        }
                        responses_out.flush().await?;
                    }
                }
            }
        }
    }
}

/// CometBFT's socket framing: each protobuf message is prefixed with its
/// length as an unsigned varint.
struct Codec;

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is not a valid varint.
    #[error("malformed length prefix")]
    Prefix,
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(u64),
    /// The body is not the expected protobuf message.
    #[error("malformed message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Writing the response failed.
    #[error("encoding: {0}")]
    Encode(#[from] prost::EncodeError),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for Codec {
    type Item = pb::Request;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<pb::Request>, FrameError> {
        // A varint is at most 10 bytes; decode from a view so an incomplete
        // prefix leaves the buffer untouched.
        let mut view = &src[..];
        let len = match prost::encoding::decode_varint(&mut view) {
            Ok(len) => len,
            Err(_) if src.len() < 10 => return Ok(None),
            Err(_) => return Err(FrameError::Prefix),
        };
        if len > MAX_FRAME_BYTES as u64 {
            return Err(FrameError::TooLarge(len));
        }
        let prefix = src.len() - view.len();
        let len = len as usize;
        if view.len() < len {
            src.reserve(prefix + len - src.len());
            return Ok(None);
        }
        src.advance(prefix);
        let body = src.split_to(len);
        Ok(Some(prost::Message::decode(body.freeze())?))
    }
}

impl Encoder<pb::Response> for Codec {
    type Error = FrameError;

    fn encode(&mut self, item: pb::Response, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = prost::Message::encoded_len(&item);
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge(len as u64));
        }
        dst.reserve(len + prost::length_delimiter_len(len));
        prost::Message::encode_length_delimited(&item, dst)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    fn frame(request: &pb::Request) -> BytesMut {
        let mut buf = BytesMut::new();
        prost::Message::encode_length_delimited(request, &mut buf).unwrap();
        buf
    }

    fn echo(message: &str) -> pb::Request {
        pb::Request {
            value: Some(pb::request::Value::Echo(pb::RequestEcho {
                message: message.into(),
            })),
        }
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let mut wire = frame(&echo("hello"));
        wire.extend_from_slice(&frame(&echo(&"x".repeat(300))));
        let mut decoded = Vec::new();
        let mut buf = BytesMut::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(request) = Codec.decode(&mut buf).unwrap() {
                decoded.push(request);
            }
        }
        assert_eq!(decoded, vec![echo("hello"), echo(&"x".repeat(300))]);
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_oversized_and_malformed_frames() {
        let mut buf = BytesMut::new();
        prost::encoding::encode_varint(MAX_FRAME_BYTES as u64 + 1, &mut buf);
        assert!(matches!(
            Codec.decode(&mut buf),
            Err(FrameError::TooLarge(_))
        ));
        // Eleven continuation bytes are never a valid varint.
        let mut buf = BytesMut::from(&[0xffu8; 11][..]);
        assert!(matches!(Codec.decode(&mut buf), Err(FrameError::Prefix)));
        // A well-framed body that is not a Request.
        let mut buf = BytesMut::new();
        prost::encoding::encode_varint(2, &mut buf);
        buf.extend_from_slice(&[0x0a, 0xff]);
        assert!(matches!(Codec.decode(&mut buf), Err(FrameError::Decode(_))));
    }

    #[test]
    fn encodes_length_delimited_responses() {
        let response = pb::Response {
            value: Some(pb::response::Value::Echo(pb::ResponseEcho {
                message: "pong".into(),
            })),
        };
        let mut out = BytesMut::new();
        Codec.encode(response.clone(), &mut out).unwrap();
        Codec.encode(response.clone(), &mut out).unwrap();
        let mut wire = out.freeze();
        for _ in 0..2 {
            let decoded: pb::Response = prost::Message::decode_length_delimited(&mut wire).unwrap();
            assert_eq!(decoded, response);
        }
        assert!(wire.is_empty());
    }

    #[test]
    fn listen_addresses_parse() {
        let tcp: SocketAddr = "127.0.0.1:26658".parse().unwrap();
        assert_eq!("127.0.0.1:26658".parse(), Ok(ListenAddr::Tcp(tcp)));
        assert_eq!("tcp://127.0.0.1:26658".parse(), Ok(ListenAddr::Tcp(tcp)));
        assert_eq!(
            "unix:///run/weft/abci.sock".parse(),
            Ok(ListenAddr::Unix("/run/weft/abci.sock".into()))
        );
        assert!("unix://".parse::<ListenAddr>().is_err());
        assert!("localhost".parse::<ListenAddr>().is_err());
        assert_eq!(
            ListenAddr::Unix("/a.sock".into()).to_string(),
            "unix:///a.sock"
        );
        assert_eq!(ListenAddr::Tcp(tcp).to_string(), "tcp://127.0.0.1:26658");
    }

    /// Serves on `addr` with test services: only Info answers (echo); the
    /// rest are never called in these tests.
    async fn serve_info_only(addr: ListenAddr) -> Result<(), BoxError> {
        let never = || -> BoxError { "not served in this test".into() };
        serve(
            &addr,
            tower::service_fn(move |_: ConsensusRequest| async move {
                Err::<ConsensusResponse, _>(never())
            }),
            tower::service_fn(move |_: MempoolRequest| async move {
                Err::<MempoolResponse, _>(never())
            }),
            tower::service_fn(|r: InfoRequest| async move {
                match r {
                    InfoRequest::Echo(e) => {
                        Ok(InfoResponse::Echo(tendermint::abci::response::Echo {
                            message: e.message,
                        }))
                    }
                    _ => Err::<InfoResponse, BoxError>("only echo".into()),
                }
            }),
            tower::service_fn(move |_: SnapshotRequest| async move {
                Err::<SnapshotResponse, _>(never())
            }),
        )
        .await
    }

    #[tokio::test]
    async fn serves_over_a_unix_socket_replacing_a_stale_one() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abci.sock");
        // A socket file left behind by a previous run.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        tokio::spawn(serve_info_only(ListenAddr::Unix(path.clone())));

        let mut socket = loop {
            match UnixStream::connect(&path).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        let flush = pb::Request {
            value: Some(pb::request::Value::Flush(pb::RequestFlush {})),
        };
        // A pipelined burst: answers come back in request order, the
        // flush's last.
        let mut out = BytesMut::new();
        for i in 0..50 {
            out.extend_from_slice(&frame(&echo(&format!("over unix {i}"))));
        }
        out.extend_from_slice(&frame(&flush));
        socket.write_all(&out).await.unwrap();

        let mut got = BytesMut::new();
        let mut responses = Vec::new();
        while responses.len() < 51 {
            let mut buf = [0u8; 256];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "server closed the connection");
            got.extend_from_slice(&buf[..n]);
            while let Ok(r) =
                <pb::Response as prost::Message>::decode_length_delimited(&mut got.clone().freeze())
            {
                let len = prost::Message::encoded_len(&r);
                got.advance(prost::encoding::length_delimiter_len(len) + len);
                responses.push(r.value);
            }
        }
        let mut expected: Vec<_> = (0..50)
            .map(|i| {
                Some(pb::response::Value::Echo(pb::ResponseEcho {
                    message: format!("over unix {i}"),
                }))
            })
            .collect();
        expected.push(Some(pb::response::Value::Flush(pb::ResponseFlush {})));
        assert_eq!(responses, expected);
    }

    #[tokio::test]
    async fn refuses_to_replace_a_file_that_is_not_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abci.sock");
        std::fs::write(&path, b"precious").unwrap();
        let err = serve_info_only(ListenAddr::Unix(path.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }
}
