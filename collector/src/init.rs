//! `steward-collector init`: a new data directory with its config, database, CA, server
//! certificate and admin token.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result, bail};
use steward_agent::state::write_atomic;

use crate::config::{ADMIN_TOKEN_FILE, CONFIG_FILE, Config, DATABASE_FILE};
use crate::pki::{CA_CERT, CA_KEY, Ca, SERVER_CERT, SERVER_KEY};
use crate::store::Store;

/// Where the collector listens when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";

/// What `init` made, for the caller to print.
#[derive(Debug)]
pub struct Initialised {
    pub config: Config,
    pub fingerprint: String,
    pub server_names: Vec<String>,
}

pub fn init(data_dir: &Path, listen: SocketAddr, extra_names: &[String]) -> Result<Initialised> {
    steward_agent::install_crypto_provider();
    if data_dir.join(CONFIG_FILE).exists() {
        bail!(
            "{} is already initialised ({} exists)",
            data_dir.display(),
            data_dir.join(CONFIG_FILE).display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", data_dir.display()))?;
    }
    let host = sysinfo::System::host_name().unwrap_or_default();
    let ca_pem = crate::pki::create_ca(if host.is_empty() { "steward" } else { &host })?;
    write_atomic(&data_dir.join(CA_KEY), ca_pem.key.as_bytes(), true)?;
    write_atomic(&data_dir.join(CA_CERT), ca_pem.cert.as_bytes(), false)?;
    let ca = Ca::from_pem(&ca_pem.cert, &ca_pem.key)?;

    let server_names = server_names(listen, &host, extra_names);
    let server = ca.server_cert(&server_names)?;
    write_atomic(&data_dir.join(SERVER_KEY), server.key.as_bytes(), true)?;
    write_atomic(&data_dir.join(SERVER_CERT), server.cert.as_bytes(), false)?;

    let token = format!("adm_{}", hex::encode(crate::random_bytes::<32>()?));
    write_atomic(
        &data_dir.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
        true,
    )?;

    let store = Store::open(&data_dir.join(DATABASE_FILE), 1, 1)?;
    store.close();

    let mut config = Config::new(listen);
    config.server_names = extra_names.to_vec();
    // The config goes last: its presence means the directory is complete.
    write_atomic(
        &data_dir.join(CONFIG_FILE),
        config.to_commented_toml().as_bytes(),
        false,
    )?;
    Ok(Initialised {
        config,
        fingerprint: ca.fingerprint(),
        server_names,
    })
}

/// Names the server certificate is valid for: the listen address (if specific), loopback, this
/// host's name, and whatever the admin added.
fn server_names(listen: SocketAddr, host: &str, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    };
    for name in extra {
        add(name.clone());
    }
    if !listen.ip().is_unspecified() {
        add(listen.ip().to_string());
    }
    add(host.to_string());
    add("localhost".into());
    add(IpAddr::from([127, 0, 0, 1]).to_string());
    add("::1".into());
    if listen.ip().is_unspecified() {
        // Reachable on every local address: include them so agents can use any.
        if let Ok(networks) = sysinfo::Networks::new_with_refreshed_list() {
            for (_, data) in networks.iter() {
                for network in data.ip_networks() {
                    if !network.addr.is_loopback()
                        && !network.addr.is_multicast()
                        && !is_link_local(network.addr)
                    {
                        add(network.addr.to_string());
                    }
                }
            }
        }
    }
    names
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
