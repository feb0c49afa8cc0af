//! The HTTP accept loop: what `axum::serve` does (HTTP/1 and 2, upgrades, connect info,
//! graceful shutdown), plus the timeouts it has no option for, against clients that send
//! slowly to hold connections open:
//!
//! - headers: a connection that has not sent a whole request head within the header timeout
//!   is closed. hyper's own HTTP/1 timer covers each request on a kept-alive connection, but
//!   not the first bytes, which hyper-util reads before it knows the protocol (hyper#3962):
//!   the first request's deadline is kept here.
//! - bodies: a request body that goes that long without a byte fails ([`ReadTimeoutBody`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// How long a client may take to send a request's head.
    pub header_read: Duration,
    /// How long a request body may go without a byte arriving.
    pub body_read: Duration,
}

/// Serves `router` on `listener` until `signal` completes, then lets open requests finish.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    timeouts: Timeouts,
    signal: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    // WebSockets over HTTP/2 need the CONNECT protocol, as in axum::serve.
    builder.http2().enable_connect_protocol();
    let builder = Arc::new(builder);

    // Connections watch `stopping` to begin their graceful shutdown; `closed` is dropped by
    // each when it is done, so the loop knows when all are.
    let (stopping, stop) = watch::channel(());
    tokio::spawn(async move {
        signal.await;
        drop(stop);
    });
    let (closed, _) = watch::channel(());
    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.closed() => break,
        };
        let (builder, router) = (builder.clone(), router.clone());
        let (stopping, done) = (stopping.clone(), closed.subscribe());
        tokio::spawn(async move {
            connection(&builder, router, timeouts, io, remote, stopping).await;
            drop(done);
        });
    }
    drop(listener);
    closed.closed().await;
}

async fn connection<I>(
    builder: &Builder<TokioExecutor>,
    router: Router,
    timeouts: Timeouts,
    io: I,
    remote: SocketAddr,
    stopping: watch::Sender<()>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let requested = Arc::new(AtomicBool::new(false));
    let service = hyper::service::service_fn({
        let requested = requested.clone();
        move |mut request: hyper::Request<Incoming>| {
            requested.store(true, Ordering::Relaxed);
            request.extensions_mut().insert(ConnectInfo(remote));
            let request =
                request.map(|body| Body::new(ReadTimeoutBody::new(body, timeouts.body_read)));
            router.clone().oneshot(request)
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let first_head = tokio::time::sleep(timeouts.header_read);
    tokio::pin!(first_head);
    let (mut watching_first_head, mut shutting_down) = (true, false);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::trace!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = stopping.closed(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut first_head, if watching_first_head => {
                if !requested.load(Ordering::Relaxed) {
                    metrics::counter!("squadron_http_header_timeouts_total").increment(1);
                    return; // dropping the connection closes it
                }
                watching_first_head = false;
            }
        }
    }
}

/// A request body that fails when no part of it arrives for `idle`: a client that stops
/// sending cannot hold the request, and the handler waiting on it, open forever.
pub struct ReadTimeoutBody<B> {
    inner: B,
    idle: Duration,
    /// Armed while the body waits for its client; dropped when a frame comes.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> ReadTimeoutBody<B> {
    pub fn new(inner: B, idle: Duration) -> Self {
        ReadTimeoutBody {
            inner,
            idle,
            timer: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the client sent no part of the request body for too long")]
pub struct BodyTimedOut;

impl<B> HttpBody for ReadTimeoutBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        metrics::counter!("squadron_http_body_timeouts_total").increment(1);
                        Poll::Ready(Some(Err(BodyTimedOut.into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
