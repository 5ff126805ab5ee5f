//! What the kernel allows: `socket`, a blocking `connect` and `close`, one connection
//! after the other, with nothing else on the thread. The ceiling beside which
//! `bench/in-process.mjs` puts an awaited loop of `net.connect` and of `porter.connect`
//! to the same server. The benchmark builds and runs it; by hand:
//!
//! ```text
//! cargo run --release -p porter-core --example connect_loop -- 127.0.0.1:8080 2000
//! ```
//!
//! Prints one JSON line: `{"connects":N,"failed":N,"elapsedMs":F,"slowestMs":F}`.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(target), Some(count)) = (args.next(), args.next()) else {
        eprintln!("usage: connect_loop <ip:port> <connections>");
        return ExitCode::from(2);
    };
    let (Ok(target), Ok(count)) = (target.parse::<SocketAddr>(), count.parse::<u32>()) else {
        eprintln!("connect_loop: expected <ip:port> <connections>");
        return ExitCode::from(2);
    };
    let mut failed = 0u32;
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..count {
        let before = Instant::now();
        // socket() and a blocking connect(); dropping the stream closes it.
        match TcpStream::connect(target) {
            Ok(stream) => drop(stream),
            Err(_) => failed += 1,
        }
        slowest = slowest.max(before.elapsed());
    }
    let elapsed = start.elapsed();
    println!(
        "{{\"connects\":{},\"failed\":{},\"elapsedMs\":{:.3},\"slowestMs\":{:.3}}}",
        count - failed,
        failed,
        elapsed.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
    ExitCode::SUCCESS
}
