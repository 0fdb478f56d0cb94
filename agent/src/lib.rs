//! The Steward agent as a library: the binary in `main.rs` is a thin CLI over it, and the
//! collector's `quickstart` runs a local agent through it.
//!
//! Data flow: [`metrics`] samples the host (and [`host`] says who it is) → [`run`] wraps the
//! sample in a wire envelope → [`transport`] sends it over mutual TLS. [`enroll`] obtains the
//! identity that [`state`] keeps.

pub mod cli;
pub mod config;
pub mod enroll;
pub mod host;
pub mod inventory;
pub mod metrics;
pub mod renew;
pub mod run;
pub mod service;
pub mod spool;
pub mod state;
pub mod transport;

/// The agent's version, reported in every envelope's host identity.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Installs rustls' ring provider as the process default. reqwest's `rustls-no-provider`
/// feature panics at client build time without one; calling this twice is harmless.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A random number from the operating system (jitter; nothing secret). A failing generator
/// yields the clock's nanoseconds, which still spreads a fleet.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0),
    }
}

/// `sha256:<hex>` of a DER certificate: how the collector CA is named and pinned.
pub fn fingerprint(der: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
    )
}

/// Normalises a user-given fingerprint (`sha256:AB:CD...`, `abcd...`) to `sha256:<lowercase hex>`.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Resolves when the agent is asked to stop, whichever request comes first: on Unix Ctrl-C or
/// SIGTERM (what a service manager sends); on Windows Ctrl-C, the console window closing, or the
/// system shutting down. Under the Windows service control manager a stop arrives through the
/// service's control handler instead, which ends `run` through a future of its own
/// (`service/windows.rs`).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_close, ctrl_shutdown};
        if let (Ok(mut close), Ok(mut shutdown)) = (ctrl_close(), ctrl_shutdown()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = close.recv() => {}
                _ = shutdown.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `println!` for command output that may go into a pipe closed early (`| head`): a broken pipe
/// ends the process quietly with success, as command-line tools do, instead of a panic.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::output_failed(error);
        }
    }};
}

/// `print!` with the same handling as [`outln!`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = write!(std::io::stdout().lock(), $($arg)*) {
            $crate::output_failed(error);
        }
    }};
}

/// Ends the process after stdout failed: quietly (exit 0) when the reader went away, else with
/// the error (exit 1).
pub fn output_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write the output: {error}");
    std::process::exit(1);
}
