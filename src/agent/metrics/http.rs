//! A minimal HTTP/1.x server for `GET /metrics`: one request per connection, then close. That is
//! all a Prometheus scrape needs. Clients are bounded in number, in request size and in time.

use super::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

const MAX_CLIENTS: usize = 16;
const MAX_REQUEST: usize = 8 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `metrics` on `address` until an accept error.
pub async fn serve(address: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let listener = TcpListener::bind(address).await?;
    log::info!("metrics on http://{}/metrics", listener.local_addr()?);
    let clients = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let (stream, _) = listener.accept().await?;
        // Over the limit, the connection is closed at once.
        let Ok(permit) = clients.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, &metrics)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let (status, body) = match route(&head) {
        Route::Metrics => ("200 OK", metrics.render()),
        Route::NotFound => ("404 Not Found", "not found; try /metrics\n".to_string()),
        Route::NotAllowed => ("405 Method Not Allowed", "GET only\n".to_string()),
        Route::Bad => ("400 Bad Request", "bad request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head, up to the blank line; a longer one is cut at `MAX_REQUEST`.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
    NotAllowed,
    Bad,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    if method != "GET" {
        return Route::NotAllowed;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        for (head, expected) in [
            (
                &b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"[..],
                Route::Metrics,
            ),
            (b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", Route::Metrics),
            (b"GET / HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"POST /metrics HTTP/1.1\r\n\r\n", Route::NotAllowed),
            (b"GET /metrics\r\n\r\n", Route::Bad),
            (b"GET /metrics SPDY/3\r\n\r\n", Route::Bad),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", Route::Bad),
            (b"", Route::Bad),
            (b"\xff\xfe /metrics HTTP/1.1\r\n\r\n", Route::NotAllowed),
        ] {
            assert_eq!(route(head), expected, "{:?}", String::from_utf8_lossy(head));
        }
    }
}
