use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;

const T: Duration = Duration::from_secs(20);

fn echo() -> Handler {
    Arc::new(|r: &Request| {
        let body = format!(
            "{} {} q={:?} v=1.{} body={}",
            r.method(),
            r.path(),
            r.query(),
            r.minor_version(),
            String::from_utf8_lossy(r.body())
        );
        Response::text(200, &body).into()
    })
}

fn serve(handler: Handler, limits: Limits) -> (Server, SocketAddr) {
    let server = Server::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    server.listen_tcp(listener, handler, limits).unwrap();
    (server, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s
}

/// Sends `raw` and reads until the server closes.
fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response with a Content-Length body from a kept-alive connection.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed inside a head: {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[test]
fn answers_get_post_and_head_over_tcp() {
    let (_server, addr) = serve(echo(), Limits::default());
    let r = exchange(addr, b"GET /a/b?x=1&y=%41 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("\r\nConnection: close\r\n") && r.contains("\r\nDate: "), "{r}");
    assert!(r.ends_with("GET /a/b q=[(\"x\", \"1\"), (\"y\", \"A\")] v=1.1 body=\n"), "{r}");
    let r = exchange(addr, b"POST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello");
    assert!(r.ends_with("POST /p q=[] v=1.0 body=hello\n"), "{r}");
    let r = exchange(addr, b"HEAD /h HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(r.contains("Content-Length: 25\r\n") && r.ends_with("\r\n\r\n"), "HEAD has no body: {r}");
    // Absolute form is served by path.
    let r = exchange(addr, b"GET http://router7/x?z HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(r.contains("GET /x q=[(\"z\", \"\")]"), "{r}");
}

#[test]
fn keeps_connections_alive_and_reads_pipelined_requests() {
    let (_server, addr) = serve(echo(), Limits::default());
    let mut s = connect(addr);
    s.write_all(b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc").unwrap();
    assert!(read_response(&mut s).ends_with("GET /1 q=[] v=1.1 body=\n"));
    assert!(read_response(&mut s).ends_with("POST /2 q=[] v=1.1 body=abc\n"));
    s.write_all(b"GET /3 HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_response(&mut s).ends_with("GET /3 q=[] v=1.1 body=\n"));
    // HTTP/1.0 keeps the connection only when asked.
    s.write_all(b"GET /4 HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut s);
    assert!(r.contains("Connection: close"), "{r}");
    assert_eq!(s.read(&mut [0u8; 1]).unwrap(), 0, "closed after an HTTP/1.0 response");
}

#[test]
fn serves_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("rt-httpd-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let server = Server::new().unwrap();
    server.listen_unix(UnixListener::bind(&path).unwrap(), echo(), Limits::default()).unwrap();
    let r = crate::unix_http::request(&path, "POST", "/v1/x", b"{}", T).unwrap();
    assert_eq!((r.status, r.text()), (200, "POST /v1/x q=[] v=1.1 body={}\n".to_owned()));
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.ends_with("GET / q=[] v=1.1 body=\n"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_malformed_and_oversized_requests() {
    let limits = Limits { max_head: 1024, max_body: 16, ..Limits::default() };
    let (_server, addr) = serve(echo(), limits);
    for (raw, status) in [
        (b"GARBAGE\r\n\r\n".to_vec(), "400"),
        (b"GET / HTTP/2.0\r\n\r\n".to_vec(), "505"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), "501"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(), "400"),
        ([b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000], b"\r\n\r\n"].concat(), "431"),
    ] {
        let r = exchange(addr, &raw);
        assert!(r.starts_with(&format!("HTTP/1.1 {status} ")), "{:?} → {r}", String::from_utf8_lossy(&raw));
        assert!(r.contains("Connection: close"), "{r}");
    }
    // A body larger than max_body is not read for a plain handler: it answers, the connection closes.
    let r = exchange(addr, b"POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789");
    assert!(r.ends_with("POST /big q=[] v=1.1 body=\n") && r.contains("Connection: close"), "{r}");
}

#[test]
fn answers_expect_100_continue_before_the_body() {
    let (_server, addr) = serve(echo(), Limits::default());
    let mut s = connect(addr);
    s.write_all(b"PUT /u HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"data").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.ends_with("PUT /u q=[] v=1.1 body=data\n"), "{out}");
}

#[test]
fn cuts_off_slow_clients_while_serving_others() {
    let limits = Limits { request_timeout: Duration::from_millis(800), ..Limits::default() };
    let (_server, addr) = serve(echo(), limits);
    // Slowloris: a header byte every 100 ms never completes the request.
    let mut slow = connect(addr);
    let t0 = crate::clock::now();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut cut = false;
    for _ in 0..100 {
        if slow.write_all(b"X").is_err() {
            cut = true;
            break;
        }
        // Others are answered meanwhile.
        assert!(exchange(addr, b"GET /other HTTP/1.1\r\nConnection: close\r\n\r\n").contains("200 OK"));
        let mut buf = [0u8; 512];
        slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match slow.read(&mut buf) {
            Ok(0) => {
                cut = true;
                break;
            }
            Ok(n) => {
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "only a 408 may come");
                cut = true;
                break;
            }
            Err(_) => {}
        }
    }
    let took = crate::clock::now() - t0;
    assert!(cut, "the slow client was never cut off");
    assert!(took < Duration::from_secs(8), "cut off only after {took:?}");
    // An idle connection is closed too.
    let mut idle = connect(addr);
    assert_eq!(idle.read(&mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn a_full_server_drops_the_oldest_waiting_connection() {
    let (_server, addr) = serve(echo(), Limits::default());
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(addr)).collect();
    // Let the server accept them all before the one that must get through.
    std::thread::sleep(Duration::from_millis(300));
    let r = exchange(addr, b"GET /late HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(r.ends_with("GET /late q=[] v=1.1 body=\n"), "{r}");
    let mut first = &idle[0];
    first.set_read_timeout(Some(T)).unwrap();
    assert_eq!(first.read(&mut [0u8; 16]).unwrap(), 0, "the oldest idle connection made room");
}

#[test]
fn response_headers_from_data_cannot_split_the_response() {
    let handler: Handler = Arc::new(|r: &Request| {
        Response::text(200, "x")
            .with_header("X-Name", r.query().first().map_or("", |(_, v)| v.as_str()))
            .with_header("Content-Length", "999")
            .into()
    });
    let (_server, addr) = serve(handler, Limits::default());
    let r = exchange(addr, b"GET /?n=a%0d%0aSet-Cookie:%20x HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(!r.contains("Set-Cookie") && r.contains("X-Invalid-Header: \r\n"), "{r}");
    assert!(r.contains("Content-Length: 2\r\n") && !r.contains("999"), "{r}");
}

/// A stream handler: `/stream` sends `n` chunks, one per `go` message;
/// `/upload` reads a body of any size on its thread and answers its length.
fn streaming(go: Arc<std::sync::Mutex<mpsc::Receiver<()>>>, started: Arc<AtomicUsize>) -> Handler {
    Arc::new(move |r: &Request| match r.path() {
        "/stream" => {
            let go = Arc::clone(&go);
            let started = Arc::clone(&started);
            Outcome::stream(move |_req, conn| {
                started.fetch_add(1, Ordering::SeqCst);
                let Ok(Some(mut out)) = conn.stream(200, &[("Content-Type", "text/plain")]) else { return };
                for i in 0..3 {
                    if go.lock().unwrap().recv_timeout(T).is_err() {
                        return;
                    }
                    if out.write_all(format!("part {i}\n").as_bytes()).is_err() {
                        return;
                    }
                }
                let _ = out.finish();
            })
        }
        "/upload" => Outcome::stream(|req, mut conn| {
            let mut body = Vec::new();
            let result = conn.body().read_to_end(&mut body);
            let response = match result {
                Ok(n) => {
                    Response::text(200, &format!("{n} bytes, first {:?}, framed {:?}", body.first(), req.framing()))
                }
                Err(e) => Response::text(400, &e.to_string()),
            };
            let _ = conn.respond(&response);
        }),
        _ => Response::text(200, "plain").into(),
    })
}

#[test]
fn a_stream_runs_on_its_own_thread_while_requests_are_answered() {
    let (tx, rx) = mpsc::channel();
    let started = Arc::new(AtomicUsize::new(0));
    let (server, addr) = serve(streaming(Arc::new(std::sync::Mutex::new(rx)), Arc::clone(&started)), Limits::default());
    let mut s = connect(addr);
    s.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains("Transfer-Encoding: chunked") && head.contains("Connection: close"), "{head}");
    assert_eq!(server.streams(), 1);
    // While the stream waits, the server answers others.
    for _ in 0..5 {
        assert!(exchange(addr, b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n").ends_with("plain\n"));
    }
    for _ in 0..3 {
        tx.send(()).unwrap();
    }
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "7\r\npart 0\n\r\n7\r\npart 1\n\r\n7\r\npart 2\n\r\n0\r\n\r\n");
    let deadline = crate::clock::now() + T;
    while server.streams() != 0 {
        assert!(crate::clock::now() < deadline, "the stream thread did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn streams_are_bounded() {
    let (tx, rx) = mpsc::channel::<()>();
    let started = Arc::new(AtomicUsize::new(0));
    let (server, addr) = serve(streaming(Arc::new(std::sync::Mutex::new(rx)), Arc::clone(&started)), Limits::default());
    let open: Vec<TcpStream> = (0..MAX_STREAMS)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    let deadline = crate::clock::now() + T;
    while started.load(Ordering::SeqCst) < MAX_STREAMS {
        assert!(crate::clock::now() < deadline, "streams did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = exchange(addr, b"GET /stream HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 503 "), "{r}");
    assert!(exchange(addr, b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n").ends_with("plain\n"));
    drop(tx);
    drop(open);
    let deadline = crate::clock::now() + T;
    while server.streams() != 0 {
        assert!(crate::clock::now() < deadline, "stream threads did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stream_handler_reads_large_and_chunked_bodies() {
    let (_tx, rx) = mpsc::channel::<()>();
    let limits = Limits { max_body: 1024, ..Limits::default() };
    let (_server, addr) = serve(streaming(Arc::new(std::sync::Mutex::new(rx)), Arc::new(AtomicUsize::new(0))), limits);
    let big = vec![7u8; 3 << 20];
    let mut s = connect(addr);
    let sender = {
        let mut s = s.try_clone().unwrap();
        let big = big.clone();
        std::thread::spawn(move || {
            s.write_all(format!("POST /upload HTTP/1.1\r\nContent-Length: {}\r\n\r\n", big.len()).as_bytes()).unwrap();
            s.write_all(&big).unwrap();
        })
    };
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    sender.join().unwrap();
    assert!(out.ends_with("3145728 bytes, first Some(7), framed Length(3145728)\n"), "{out}");
    let chunked = b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n1;x\r\n!\r\n0\r\n\r\n";
    let r = exchange(addr, chunked);
    assert!(r.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"), "{r}");
    assert!(r.ends_with("6 bytes, first Some(104), framed Chunked\n"), "{r}");
    // A small body read before the handler reaches the stream handler too.
    let r = exchange(addr, b"POST /upload HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert!(r.ends_with("3 bytes, first Some(97), framed Length(3)\n"), "{r}");
    let r = exchange(addr, b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert!(r.starts_with("HTTP/1.1 400 ") && r.contains("bad chunk size"), "{r}");
}

#[test]
fn a_closed_listener_refuses_connections_at_once() {
    let server = Server::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let id = server.listen_tcp(listener, echo(), Limits::default()).unwrap();
    assert!(exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").contains("200 OK"));
    server.close(id);
    assert!(TcpStream::connect(addr).is_err(), "closed when close() returned");
    // The same address can be listened on again right away.
    let again = TcpListener::bind(addr).unwrap();
    server.listen_tcp(again, echo(), Limits::default()).unwrap();
    assert!(exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").contains("200 OK"));
}

#[test]
fn the_thread_ends_with_the_last_handle_and_many_clients_are_served() {
    let (server, addr) = serve(echo(), Limits::default());
    let barrier = Arc::new(Barrier::new(8));
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                for j in 0..20 {
                    let r = exchange(addr, format!("GET /{i}/{j} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes());
                    assert!(r.ends_with(&format!("GET /{i}/{j} q=[] v=1.1 body=\n")), "{r}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let clone = server.clone();
    drop(server);
    assert!(exchange(addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").contains("200 OK"), "a clone keeps it");
    drop(clone);
    let deadline = crate::clock::now() + T;
    while TcpStream::connect(addr).is_ok() {
        assert!(crate::clock::now() < deadline, "still listening after the last handle went");
        std::thread::sleep(Duration::from_millis(10));
    }
}
