//! `steward-collector quickstart`: a collector on 127.0.0.1 and a local agent enrolled with it,
//! all with embedded defaults, then the host's CI as the collector sees it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use steward_agent::state::StateDir;

use super::admin::{AdminClient, render_ci};
use crate::config::Config;
use crate::store::{CiDetail, CiRow};

const REPORT_INTERVAL_SECS: u32 = 10;

pub async fn quickstart(data_dir: Option<PathBuf>, once: bool) -> Result<()> {
    let dir = match data_dir {
        Some(dir) => dir,
        None => default_dir(),
    };
    if !crate::init::is_initialised(&dir) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        let made = crate::init::init(&dir, Some(([127, 0, 0, 1], port).into()), &[])?;
        steward_agent::outln!("initialised {} (CA {})", dir.display(), made.fingerprint);
    }
    let config = Config::load(&dir)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another quickstart using {}?)",
                config.listen,
                dir.display()
            )
        })?;
    let url = format!("https://127.0.0.1:{}", config.listen.port());
    let loaded = crate::server::load(&dir, config)?;
    let store = loaded.state.store.clone();
    let fingerprint = loaded.state.ca.fingerprint();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve(listener, loaded, async {
        let _ = stopped.await;
    }));
    steward_agent::outln!("collector listening on {url}");

    let agent_config = steward_agent::config::Config {
        state_dir: dir.join("agent"),
        interval_secs: REPORT_INTERVAL_SECS,
        ..Default::default()
    };
    if !StateDir::new(&agent_config.state_dir).is_enrolled() {
        let token = format!("stw_{}", hex::encode(crate::random_bytes::<32>()?));
        store
            .create_enroll_token(
                crate::sha256_hex(token.as_bytes()),
                crate::now_ms() + 600_000,
                1,
            )
            .await?;
        let agent_id = steward_agent::run::enroll(
            &agent_config,
            &url,
            &token,
            &fingerprint,
            &agent_config.state_dir,
        )
        .await?;
        steward_agent::outln!("local agent enrolled as {agent_id}");
    }
    steward_agent::run::run(&agent_config, true, std::future::pending())
        .await
        .context("the local agent's first report failed")?;

    let admin = AdminClient::for_data_dir(&dir)?;
    let machine_id = steward_agent::host::identity(&agent_config.root).machine_id;
    let show = || async {
        let cis: Vec<CiRow> = admin.get("/cis").await?;
        let ci = cis
            .iter()
            .find(|ci| ci.machine_id == machine_id)
            .or(cis.first())
            .context("the collector has no CI for this host")?;
        admin.get::<CiDetail>(&format!("/cis/{}", ci.id)).await
    };
    steward_agent::outln!();
    steward_agent::out!("{}", render_ci(&show().await?, false));

    if !once {
        steward_agent::outln!(
            "\nreporting every {REPORT_INTERVAL_SECS} s; Ctrl-C (or SIGTERM) to stop. In another terminal:\n  steward-collector ci list --data-dir {}",
            dir.display()
        );
        let (agent_stop, agent_stopped) = tokio::sync::oneshot::channel::<()>();
        let agent = tokio::spawn(async move {
            steward_agent::run::run(&agent_config, false, async {
                let _ = agent_stopped.await;
            })
            .await
        });
        let stop_signal = steward_agent::shutdown_signal();
        tokio::pin!(stop_signal);
        let mut ticker =
            tokio::time::interval(Duration::from_secs(u64::from(REPORT_INTERVAL_SECS)));
        ticker.tick().await;
        loop {
            tokio::select! {
                () = &mut stop_signal => break,
                _ = ticker.tick() => {
                    match show().await {
                        Ok(detail) => steward_agent::outln!("{}", status_line(&detail)),
                        Err(error) => steward_agent::outln!("cannot read the CI: {error:#}"),
                    }
                }
            }
        }
        let _ = agent_stop.send(());
        let _ = agent.await;
    }
    let _ = stop.send(());
    server.await.context("the collector task failed")??;
    Ok(())
}

fn status_line(detail: &CiDetail) -> String {
    let metrics = detail.metrics.as_ref();
    let cpu = metrics
        .and_then(|m| m["cpu"]["total_pct"].as_f64())
        .unwrap_or(0.0);
    let used = metrics
        .and_then(|m| m["memory"]["used"].as_f64())
        .unwrap_or(0.0);
    let total = metrics
        .and_then(|m| m["memory"]["total"].as_f64())
        .unwrap_or(1.0)
        .max(1.0);
    format!(
        "{}  {}  cpu {:.1}%  memory {:.1}%  reports stored {}",
        crate::format_ms(detail.ci.latest_at),
        detail.ci.name,
        cpu,
        used * 100.0 / total,
        detail.reports_stored
    )
}

/// `$XDG_DATA_HOME/steward/quickstart`, else `~/.local/share/steward/quickstart`.
fn default_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("steward").join("quickstart")
}
