//! `steward-agent`: the command line over the agent library. Exit codes: 0 ok, 1 runtime
//! failure, 2 usage or config error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use steward_agent::cli::{Cli, Command};
use steward_agent::config::{Config, ConfigError};
use steward_agent::state::StateDir;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => Ok(config),
        Err(error @ (ConfigError::Read { .. } | ConfigError::Invalid { .. })) => {
            Err(error.to_string())
        }
    }
    .and_then(|config| apply_overrides(config, &cli.command));
    // Under the service control manager the process is the SCM's: its dispatcher runs the agent
    // (or reports the config error) on a thread of its own, logging to a file, with its own
    // runtime.
    #[cfg(windows)]
    if let Command::Run {
        windows_service: true,
        ..
    } = cli.command
    {
        return steward_agent::service::run_service(config);
    }
    let config = match config {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::from(config.log_level))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli.command, config, cli.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn apply_overrides(mut config: Config, command: &Command) -> Result<Config, String> {
    match command {
        Command::Enroll { state_dir, .. } | Command::Status { state_dir, .. } => {
            if let Some(dir) = state_dir {
                config.state_dir = dir.clone();
            }
        }
        Command::Run {
            state_dir,
            interval,
            root,
            ..
        } => {
            if let Some(dir) = state_dir {
                config.state_dir = dir.clone();
            }
            if let Some(root) = root {
                config.root = root.clone();
            }
            if let Some(interval) = interval {
                if *interval == 0 {
                    return Err("--interval must be at least 1 second".into());
                }
                config.interval_secs = *interval;
            }
        }
        Command::Install { .. } | Command::Uninstall { .. } => {}
        Command::Collect { root, .. } => {
            if let Some(root) = root {
                config.root = root.clone();
            }
        }
        Command::Inventory {
            root, asset_file, ..
        } => {
            if let Some(root) = root {
                config.root = root.clone();
            }
            if let Some(file) = asset_file {
                config.inventory.asset_file = file.clone();
            }
        }
    }
    Ok(config)
}

async fn execute(command: Command, config: Config, config_file: Option<PathBuf>) -> Result<()> {
    match command {
        Command::Install { target, no_start } => {
            let log = steward_agent::service::install(
                &target,
                config_file.as_deref(),
                &config,
                no_start,
            )?;
            steward_agent::out!("{}", log.text());
            Ok(())
        }
        Command::Uninstall { target, purge } => {
            let log = steward_agent::service::uninstall(&target, &config, purge)?;
            steward_agent::out!("{}", log.text());
            Ok(())
        }
        Command::Enroll {
            collector,
            token,
            ca_fingerprint,
            ..
        } => {
            let agent_id = steward_agent::run::enroll(
                &config,
                &collector,
                &token,
                &ca_fingerprint,
                &config.state_dir,
            )
            .await?;
            steward_agent::outln!(
                "enrolled as {agent_id}; state in {}",
                config.state_dir.display()
            );
            Ok(())
        }
        Command::Run {
            once,
            windows_service,
            ..
        } => {
            if windows_service {
                anyhow::bail!("--windows-service is only for the Windows service control manager");
            }
            steward_agent::run::run(&config, once, steward_agent::shutdown_signal()).await
        }
        Command::Collect { json, .. } => {
            let report = steward_agent::run::collect_once(&config).await?;
            let inventory = config.inventory.enabled.then(|| {
                steward_agent::inventory::collect(&config.root, &config.inventory.asset_file)
            });
            if json {
                let mut value = serde_json::to_value(&report)?;
                if let (Some(object), Some(inventory)) = (value.as_object_mut(), &inventory) {
                    object.insert(
                        "inventory".into(),
                        steward_agent::inventory::json_view(inventory),
                    );
                }
                steward_agent::outln!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                steward_agent::out!("{}", steward_agent::run::human_summary(&report));
                if let Some(inventory) = &inventory {
                    steward_agent::out!("{}", steward_agent::inventory::human_summary(inventory));
                }
            }
            Ok(())
        }
        Command::Inventory { json, postcard, .. } => {
            let inventory =
                steward_agent::inventory::collect(&config.root, &config.inventory.asset_file);
            if postcard {
                let bytes = postcard::to_stdvec(&inventory)?;
                std::io::Write::write_all(&mut std::io::stdout().lock(), &bytes)?;
            } else if json {
                steward_agent::outln!("{}", serde_json::to_string_pretty(&inventory)?);
            } else {
                steward_agent::out!("{}", steward_agent::inventory::human_summary(&inventory));
            }
            Ok(())
        }
        Command::Status { json, .. } => {
            let state = StateDir::new(&config.state_dir);
            if !state.is_enrolled() {
                if json {
                    steward_agent::outln!(
                        "{}",
                        serde_json::json!({ "enrolled": false, "state_dir": config.state_dir })
                    );
                } else {
                    steward_agent::outln!(
                        "not enrolled (state dir {})",
                        config.state_dir.display()
                    );
                }
                return Ok(());
            }
            let enrolled = state.load()?;
            let spool = steward_agent::spool::read_stats(&config.state_dir);
            if json {
                steward_agent::outln!(
                    "{}",
                    serde_json::json!({
                        "enrolled": true,
                        "state_dir": config.state_dir,
                        "identity": enrolled.identity,
                        "spool": spool,
                    })
                );
            } else {
                let id = &enrolled.identity;
                let now = steward_agent::metrics::unix_ms(std::time::SystemTime::now());
                let oldest = spool
                    .oldest_ms
                    .map(|ms| format!("{} s ago", (now - ms).max(0) / 1000))
                    .unwrap_or_else(|| "-".into());
                let certificate = match id.cert_not_after_ms {
                    Some(ms) if ms > now => format!(
                        "expires in {} days (renewed automatically before then)",
                        (ms - now) / 86_400_000
                    ),
                    Some(_) => "expired: enroll again with a new token".into(),
                    None => "expiry unknown (renewed at the next run)".into(),
                };
                steward_agent::outln!(
                    "enrolled as {}\ncollector   {}\nCA          {}\ncertificate {certificate}\nstate dir   {}\nspool       {} reports waiting ({} bytes), oldest {oldest}, {} dropped",
                    id.agent_id,
                    id.collector_url,
                    id.ca_fingerprint,
                    config.state_dir.display(),
                    spool.backlog,
                    spool.bytes,
                    spool.dropped,
                );
            }
            Ok(())
        }
    }
}
