//! The admin listener: `GET /metrics` (Prometheus text format) and `GET /health`, on an address
//! of its own so that scrapes never queue behind S3 traffic or need S3 credentials.
//!
//! Model: one extra thread with its own monoio runtime and hyper HTTP/1.1, serving one scrape at
//! a time per connection; it reads the executors' counters through [`crate::metrics`] and never
//! touches their state otherwise. Invariant: nothing here is reachable from the S3 listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use monoio_compat::hyper::{MonoioIo, MonoioTimer};

use crate::errors::GatewayError;
use crate::server::{HttpResponse, Shared, full_body};

/// Binds the admin listener and serves it on a new thread; returns the bound address (the real
/// port when the configured one was 0) once it listens.
pub(crate) fn start_admin(
    shared: Arc<Shared>,
    address: SocketAddr,
) -> Result<
    (
        SocketAddr,
        std::thread::JoinHandle<Result<(), GatewayError>>,
    ),
    GatewayError,
> {
    let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("cairn-gateway-admin".to_owned())
        .spawn(move || -> Result<(), GatewayError> {
            let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build()?;
            runtime.block_on(async move {
                // Without SO_REUSEPORT (the S3 listener's default): a second process on the same
                // admin address must fail to start rather than answer half of the scrapes.
                let options = monoio::net::ListenerOpts::new().reuse_port(false);
                let listener = match monoio::net::TcpListener::bind_with_config(address, &options) {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = ready_sender
                            .send(Err(std::io::Error::new(error.kind(), error.to_string())));
                        return Err(GatewayError::Io(error));
                    }
                };
                let _ = ready_sender.send(listener.local_addr());
                loop {
                    let (stream, _peer) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            tracing::warn!(%error, "admin accept failed");
                            monoio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let shared = Arc::clone(&shared);
                    monoio::spawn(serve_admin_connection(shared, stream));
                }
            })
        })?;
    match ready_receiver.recv() {
        Ok(Ok(bound)) => Ok((bound, thread)),
        Ok(Err(error)) => Err(GatewayError::Io(error)),
        Err(_) => Err(thread
            .join()
            .unwrap_or(Err(GatewayError::ExecutorPanicked))
            .err()
            .unwrap_or(GatewayError::ExecutorPanicked)),
    }
}

async fn serve_admin_connection(shared: Arc<Shared>, stream: monoio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(stream) = monoio::io::IntoPollIo::into_poll_io(stream) else {
        return;
    };
    let service = hyper::service::service_fn(move |request: http::Request<_>| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(admin_response(&shared, &request)) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(MonoioTimer)
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(MonoioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "admin connection ended with an error");
    }
}

fn admin_response<B>(shared: &Shared, request: &http::Request<B>) -> HttpResponse {
    let plain = |status: http::StatusCode, content_type: &str, text: String| {
        http::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(full_body(text))
            .expect("static headers are valid")
    };
    let method = request.method();
    if method != http::Method::GET && method != http::Method::HEAD {
        return plain(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "GET only\n".to_owned(),
        );
    }
    match request.uri().path() {
        "/metrics" => plain(
            http::StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render()
                + &shared.suspects.render()
                + &shared.quotas.render()
                + &shared.connections.render(),
        ),
        "/health" => plain(
            http::StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok\n".to_owned(),
        ),
        _ => plain(
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics\n".to_owned(),
        ),
    }
}
