//! The forwarder: transactions this node's API admitted are packed into
//! envelopes (bounded by size and a short wait) and handed to the local
//! CometBFT, which gossips each envelope as one transaction. The client's
//! answer never waits for this: the transactions are already in the app's
//! mempool, where this node's own proposals find them; forwarding is what
//! lets every other validator propose them too.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tendermint_rpc::{Client, HttpClient};
use tokio::{
    sync::{mpsc, Semaphore},
    time::Instant,
};
use weft_core::envelope::{Envelope, ENVELOPE_OVERHEAD, ENVELOPE_TX_OVERHEAD, MAX_ENVELOPE_TXS};

/// How envelopes are packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeConfig {
    /// Largest envelope, in encoded bytes (it travels as one CometBFT
    /// transaction, base64 inside a JSON-RPC body: keep it well under
    /// CometBFT's `rpc.max_body_bytes` and `mempool.max_tx_bytes`).
    pub max_bytes: usize,
    /// Longest a transaction waits for others to share its envelope.
    pub max_wait: Duration,
    /// Envelopes being handed to CometBFT at once.
    pub max_in_flight: usize,
    /// Transactions waiting to be packed; past it, submissions wait.
    pub queue: usize,
}

impl Default for EnvelopeConfig {
    fn default() -> Self {
        EnvelopeConfig {
            max_bytes: 256 * 1024,
            max_wait: Duration::from_millis(10),
            max_in_flight: 4,
            queue: 65_536,
        }
    }
}

/// Where admitted transactions go to be forwarded. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    queue: mpsc::Sender<Bytes>,
}

impl Forwarder {
    /// Starts the packing task on the current runtime.
    pub fn spawn(cometbft: HttpClient, config: EnvelopeConfig) -> Self {
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(pack(rx, config, move |item| {
            let cometbft = cometbft.clone();
            async move { broadcast(&cometbft, item).await }
        }));
        Forwarder { queue }
    }

    /// A forwarder handing each packed item to `send` (tests).
    #[cfg(test)]
    pub(crate) fn with_sender<F, Fut>(config: EnvelopeConfig, send: F) -> Self
    where
        F: Fn(Bytes) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (queue, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(pack(rx, config, send));
        Forwarder { queue }
    }

    /// Queues an admitted transaction (waits while the queue is full).
    /// False when the packing task is gone.
    pub async fn forward(&self, tx: Bytes) -> bool {
        self.queue.send(tx).await.is_ok()
    }
}

/// The packing loop: an envelope closes when the next transaction would
/// not fit, when it holds `MAX_ENVELOPE_TXS`, or `max_wait` after its
/// first transaction arrived. A lone transaction goes bare (it needs no
/// envelope).
async fn pack<F, Fut>(mut rx: mpsc::Receiver<Bytes>, config: EnvelopeConfig, send: F)
where
    F: Fn(Bytes) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut carried: Option<Bytes> = None;
    loop {
        let first = match carried.take() {
            Some(tx) => tx,
            None => match rx.recv().await {
                Some(tx) => tx,
                None => return,
            },
        };
        let deadline = Instant::now() + config.max_wait;
        let mut size = ENVELOPE_OVERHEAD + ENVELOPE_TX_OVERHEAD + first.len();
        let mut txs = vec![first];
        let mut closed = false;
        while txs.len() < MAX_ENVELOPE_TXS {
            let next = match rx.try_recv() {
                Ok(tx) => Some(tx),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    }
                }
            };
            let Some(tx) = next else {
                closed = true;
                break;
            };
            if size + ENVELOPE_TX_OVERHEAD + tx.len() > config.max_bytes {
                carried = Some(tx);
                break;
            }
            size += ENVELOPE_TX_OVERHEAD + tx.len();
            txs.push(tx);
        }
        let count = txs.len();
        let item = if count == 1 {
            txs.pop().unwrap_or_default()
        } else {
            Bytes::from(
                Envelope {
                    txs: txs.into_iter().map(|t| t.to_vec()).collect(),
                }
                .encode(),
            )
        };
        metrics::histogram!("weft_envelope_txs").record(count as f64);
        // Bounded concurrency: a slow CometBFT holds the queue back, and
        // with it the submissions, instead of piling up requests.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let sent = send(item);
        tokio::spawn(async move {
            sent.await;
            drop(permit);
        });
        if closed {
            return;
        }
    }
}

/// Hands one item to CometBFT. A refusal is logged, not retried: the
/// transactions stay in this node's mempool either way.
async fn broadcast(cometbft: &HttpClient, item: Bytes) {
    let outcome = match cometbft.broadcast_tx_sync(item.to_vec()).await {
        Ok(answer) if answer.code.is_ok() => "ok",
        Ok(answer) => {
            tracing::debug!(code = answer.code.value(), log = %answer.log, "CometBFT refused a forwarded envelope");
            "refused"
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not forward an envelope to CometBFT");
            "error"
        }
    };
    metrics::counter!("weft_envelopes_forwarded_total", "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn recorder(config: EnvelopeConfig) -> (Forwarder, Arc<Mutex<Vec<Bytes>>>) {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        let f = Forwarder::with_sender(config, move |item| {
            let log = log.clone();
            async move { log.lock().unwrap().push(item) }
        });
        (f, sent)
    }

    fn inner(items: &[Bytes]) -> Vec<Vec<Vec<u8>>> {
        items
            .iter()
            .map(|i| {
                if Envelope::is_envelope(i) {
                    Envelope::decode(i).unwrap().txs
                } else {
                    vec![i.to_vec()]
                }
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn transactions_share_envelopes_up_to_the_size_bound_in_order() {
        let (f, sent) = recorder(EnvelopeConfig {
            max_bytes: Envelope::encoded_len([100; 3]),
            max_wait: Duration::from_millis(10),
            ..Default::default()
        });
        for i in 0..7u8 {
            assert!(f.forward(Bytes::from(vec![i; 100])).await);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let items = sent.lock().unwrap().clone();
        let got = inner(&items);
        assert_eq!(
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 1],
            "three per envelope, the last one bare"
        );
        assert!(!Envelope::is_envelope(&items[2]));
        let order: Vec<u8> = got.iter().flatten().map(|t| t[0]).collect();
        assert_eq!(order, (0..7).collect::<Vec<_>>());
        assert!(items
            .iter()
            .all(|i| i.len() <= Envelope::encoded_len([100; 3])));
    }

    #[tokio::test(start_paused = true)]
    async fn an_envelope_closes_after_the_wait() {
        let (f, sent) = recorder(EnvelopeConfig {
            max_wait: Duration::from_millis(10),
            ..Default::default()
        });
        f.forward(Bytes::from_static(b"a")).await;
        f.forward(Bytes::from_static(b"b")).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(sent.lock().unwrap().is_empty(), "still waiting for company");
        tokio::time::sleep(Duration::from_millis(10)).await;
        f.forward(Bytes::from_static(b"c")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let got = inner(&sent.lock().unwrap());
        assert_eq!(
            got,
            vec![vec![b"a".to_vec(), b"b".to_vec()], vec![b"c".to_vec()]]
        );
    }
}
