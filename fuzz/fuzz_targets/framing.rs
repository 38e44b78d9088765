//! `read_frame`, the length-prefixed framing every light protocol stream (metadata, light
//! push, filter, store) is read with before any protobuf is decoded.
//!
//! Checks: no panic on any input; a frame over the limit is refused, never allocated; a frame
//! that was read, written again with `write_frame`, reads back the same.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use rln_relay::protocols::framing::{read_frame, write_frame, FrameError};

/// Small, so that both sides of the limit are reached.
const LIMIT: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(5);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        match read_frame(&mut Cursor::new(data), LIMIT, TIMEOUT).await {
            Ok(body) => {
                assert!(body.len() <= LIMIT);
                let mut out = Cursor::new(Vec::new());
                write_frame(&mut out, &body, TIMEOUT)
                    .await
                    .expect("writing to memory");
                let bytes = out.into_inner();
                let back = read_frame(&mut Cursor::new(&bytes[..]), LIMIT, TIMEOUT).await;
                assert_eq!(back.expect("a written frame reads back"), body);
            }
            Err(FrameError::TooLarge { size, limit }) => assert!(size > limit as u64),
            Err(FrameError::Timeout(_)) => panic!("reading from memory timed out"),
            Err(_) => {}
        }
    });
});
