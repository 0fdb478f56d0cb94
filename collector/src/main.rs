//! `steward-collector`. Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use steward_collector::cli::{
    AgentsCommand, CiCommand, Cli, Command, ConflictsCommand, EnrollTokenCommand, ServiceCommand,
    UsageError, WarrantyCommand, admin,
};
use steward_collector::config::{Config, ConfigError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match &cli.command {
        Command::Serve { data_dir, .. } => match Config::load(data_dir) {
            Ok(config) => config.log_level.parse().unwrap_or(tracing::Level::INFO),
            Err(error) => return fail(&anyhow::Error::from(error)),
        },
        Command::Quickstart { .. } => tracing::Level::WARN,
        _ => tracing::Level::WARN,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::from(error)),
    };
    let result = runtime.block_on(execute(cli.command));
    // `serve` bounds its own drain; a blocking task it gave up on must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    let usage = error
        .chain()
        .any(|cause| cause.is::<ConfigError>() || cause.is::<UsageError>());
    ExitCode::from(if usage { 2 } else { 1 })
}

async fn execute(command: Command) -> Result<()> {
    match command {
        Command::Init {
            data_dir,
            listen,
            server_names,
        } => {
            let made = steward_collector::init::init(&data_dir, listen, &server_names)?;
            steward_agent::outln!("initialised {}", data_dir.display());
            steward_agent::outln!("  listen        {}", made.config.listen);
            steward_agent::outln!("  certificate   {}", made.server_names.join(", "));
            steward_agent::outln!(
                "  admin token   {}",
                data_dir
                    .join(steward_collector::config::ADMIN_TOKEN_FILE)
                    .display()
            );
            steward_agent::outln!(
                "start it with:  steward-collector serve --data-dir {}",
                data_dir.display()
            );
            steward_agent::outln!(
                "enroll agents:  steward-agent enroll --collector https://HOST:{} --token $(steward-collector enroll-token create --data-dir {}) --ca-fingerprint {}",
                made.config.listen.port(),
                data_dir.display(),
                made.fingerprint
            );
            steward_agent::outln!("{}", made.fingerprint);
            Ok(())
        }
        Command::Serve { data_dir, listen } => {
            let mut config = Config::load(&data_dir)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            let address = config.listen;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
            let loaded = steward_collector::server::load(&data_dir, config)?;
            tracing::info!(%address, ca = loaded.state.ca.fingerprint(), "collector serving");
            steward_collector::server::serve(listener, loaded, steward_agent::shutdown_signal())
                .await
        }
        Command::Quickstart { data_dir, once } => {
            steward_collector::cli::quickstart::quickstart(data_dir, once).await
        }
        Command::Backup {
            file,
            data_dir,
            json,
        } => steward_collector::cli::backup::backup(&data_dir, &file, json),
        Command::Restore {
            file,
            data_dir,
            json,
        } => steward_collector::cli::backup::restore(&data_dir, &file, json),
        Command::AdminToken { command } => {
            steward_collector::cli::admin_tokens::admin_token(command).await
        }
        Command::EnrollToken {
            command:
                EnrollTokenCommand::Create {
                    ttl,
                    uses,
                    connection,
                },
        } => admin::create_token(&connection, ttl.into(), uses).await,
        Command::Agents {
            command: AgentsCommand::List { json, connection },
        } => admin::list_agents(&connection, json).await,
        Command::Agents {
            command: AgentsCommand::Revoke { id, connection },
        } => admin::revoke_agent(&connection, &id).await,
        Command::Ci {
            command:
                CiCommand::List {
                    class,
                    tag,
                    service,
                    name,
                    json,
                    connection,
                },
        } => {
            let filter = steward_collector::store::CiFilter {
                class,
                tag,
                service,
                name,
            };
            admin::list_cis(&connection, &filter, json).await
        }
        Command::Ci {
            command:
                CiCommand::History {
                    name_or_id,
                    since,
                    json,
                    connection,
                },
        } => admin::ci_history(&connection, &name_or_id, since.map(Into::into), json).await,
        Command::Ci {
            command:
                CiCommand::Relate {
                    from,
                    kind,
                    to,
                    connection,
                },
        } => admin::relate(&connection, &from, &kind, &to, false).await,
        Command::Ci {
            command:
                CiCommand::Unrelate {
                    from,
                    kind,
                    to,
                    connection,
                },
        } => admin::relate(&connection, &from, &kind, &to, true).await,
        Command::Ci {
            command:
                CiCommand::Tag {
                    name_or_id,
                    tag,
                    remove,
                    connection,
                },
        } => admin::tag(&connection, &name_or_id, &tag, remove).await,
        Command::Ci {
            command:
                CiCommand::Impact {
                    name_or_id,
                    json,
                    connection,
                },
        } => admin::impact(&connection, &name_or_id, json).await,
        Command::Ci {
            command: CiCommand::Export { format, connection },
        } => admin::export(&connection, &format).await,
        Command::Ci {
            command: CiCommand::Import { file, connection },
        } => admin::import_structure(&connection, &file).await,
        Command::Snmp { command } => steward_collector::cli::snmp::run(command).await,
        Command::Events { command } => steward_collector::cli::events::events(command).await,
        Command::Silence { command } => steward_collector::cli::events::silence(command).await,
        Command::Rules { command } => steward_collector::cli::events::rules(command).await,
        Command::Tickets { command } => steward_collector::cli::tickets::tickets(command).await,
        Command::Service {
            command:
                ServiceCommand::Create {
                    name,
                    description,
                    connection,
                },
        } => admin::create_service(&connection, &name, &description).await,
        Command::Service {
            command:
                ServiceCommand::Add {
                    name,
                    cis,
                    connection,
                },
        } => admin::add_to_service(&connection, &name, &cis).await,
        Command::Service {
            command:
                ServiceCommand::Show {
                    name,
                    json,
                    connection,
                },
        } => admin::show_service(&connection, &name, json).await,
        Command::Ci {
            command:
                CiCommand::Show {
                    name_or_id,
                    json,
                    connection,
                },
        } => admin::show_ci(&connection, &name_or_id, json).await,
        Command::Ci {
            command:
                CiCommand::Software {
                    name,
                    version_below,
                    json,
                    connection,
                },
        } => admin::find_software(&connection, &name, version_below.as_deref(), json).await,
        Command::Ci {
            command:
                CiCommand::ImportAssets {
                    file,
                    skip_bad_rows,
                    json,
                    connection,
                },
        } => admin::import_assets(&connection, &file, skip_bad_rows, json).await,
        Command::Ci {
            command:
                CiCommand::Conflicts {
                    command:
                        ConflictsCommand::List {
                            all,
                            json,
                            connection,
                        },
                },
        } => admin::list_conflicts(&connection, all, json).await,
        Command::Ci {
            command:
                CiCommand::Conflicts {
                    command:
                        ConflictsCommand::Resolve {
                            id,
                            merge,
                            into,
                            connection,
                            ..
                        },
                },
        } => admin::resolve_conflict(&connection, id, merge, into).await,
        Command::Warranty {
            command:
                WarrantyCommand::List {
                    expiring_within,
                    expired,
                    json,
                    connection,
                },
        } => {
            let within_days = expiring_within.map(|d| d.as_secs().div_ceil(86_400));
            admin::list_warranty(&connection, within_days, expired, json).await
        }
    }
}
