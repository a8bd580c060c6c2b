//! Runs a backend call so that a panic inside it becomes an error instead of killing the
//! thread that called it (which would strand every caller waiting on that thread).

use std::future::Future;

use audit_format::error::{Error, Result};

/// Polls `fut` to completion, turning a panic into [`Error::Fatal`].
pub(crate) async fn catch_panics<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)))
            .unwrap_or_else(|payload| {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".to_owned());
                std::task::Poll::Ready(Err(Error::Fatal {
                    message: format!("the backend panicked: {msg}"),
                }))
            })
    })
    .await
}
