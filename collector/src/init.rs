//! `steward-collector init`: a new data directory with its config, database, CA, server
//! certificate and admin token.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, Result, bail};
use steward_agent::state::write_atomic;

use crate::cli::UsageError;
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

/// Initialises `data_dir`. A `collector.toml` already there (the Debian package links
/// `/etc/steward/collector.toml` into its data directory) is adopted: its listen address and
/// server names make the certificate, and `--listen`/`--server-name` are refused beside it. The
/// database is written last: its presence means the directory is complete. Run by root in a
/// directory a service user owns, every file goes to that user.
pub fn init(
    data_dir: &Path,
    listen: Option<SocketAddr>,
    extra_names: &[String],
) -> Result<Initialised> {
    steward_agent::install_crypto_provider();
    if is_initialised(data_dir) {
        bail!(
            "{} is already initialised ({} exists)",
            data_dir.display(),
            data_dir.join(DATABASE_FILE).display()
        );
    }
    let config_path = data_dir.join(CONFIG_FILE);
    let adopted = config_path.exists();
    let config = if adopted {
        if listen.is_some() || !extra_names.is_empty() {
            return Err(UsageError(format!(
                "{} exists: set `listen` and `server_names` there instead of --listen/--server-name",
                config_path.display()
            ))
            .into());
        }
        Config::load(data_dir)?
    } else {
        let mut config = Config::new(match listen {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse()?,
        });
        config.server_names = extra_names.to_vec();
        config
    };
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

    let server_names = server_names(config.listen, &host, &config.server_names);
    let server = ca.server_cert(&server_names)?;
    write_atomic(&data_dir.join(SERVER_KEY), server.key.as_bytes(), true)?;
    write_atomic(&data_dir.join(SERVER_CERT), server.cert.as_bytes(), false)?;

    let token = format!("adm_{}", hex::encode(crate::random_bytes::<32>()?));
    write_atomic(
        &data_dir.join(ADMIN_TOKEN_FILE),
        format!("{token}\n").as_bytes(),
        true,
    )?;
    if !adopted {
        write_atomic(&config_path, config.to_commented_toml().as_bytes(), false)?;
    }

    // The database goes last: its presence means the directory is complete.
    let database = data_dir.join(DATABASE_FILE);
    let store = Store::open(&database, 1, 1)?;
    store.close();
    // The CMDB is for the collector alone, whatever the umask of who ran init (the unit's is
    // 0077); SQLite gives its -wal and -shm files the database's mode.
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let file = data_dir.join(format!("{DATABASE_FILE}{suffix}"));
        if file.exists() {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", file.display()))?;
            steward_agent::state::give_to_directory_owner(&file)?;
        }
    }
    Ok(Initialised {
        config,
        fingerprint: ca.fingerprint(),
        server_names,
    })
}

/// Whether `init` completed in `data_dir`.
pub fn is_initialised(data_dir: &Path) -> bool {
    data_dir.join(DATABASE_FILE).exists()
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // reason: tests
mod tests {
    use super::*;

    #[test]
    fn a_config_already_there_is_adopted_and_the_database_marks_completion() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // What the package ships: a config (here a copy; the package links it).
        let mut packaged = Config::new("127.0.0.1:9443".parse().unwrap());
        packaged.server_names = vec!["collector.example.org".into()];
        std::fs::write(data.join(CONFIG_FILE), packaged.to_commented_toml()).unwrap();
        let before = std::fs::read(data.join(CONFIG_FILE)).unwrap();

        let refused = init(&data, Some("0.0.0.0:8443".parse().unwrap()), &[]).unwrap_err();
        assert!(
            refused.to_string().contains("instead of --listen"),
            "{refused}"
        );
        assert!(!is_initialised(&data));

        let made = init(&data, None, &[]).unwrap();
        assert_eq!(made.config.listen, packaged.listen);
        assert!(
            made.server_names
                .contains(&"collector.example.org".to_string())
        );
        assert_eq!(std::fs::read(data.join(CONFIG_FILE)).unwrap(), before);
        assert!(is_initialised(&data));
        for file in [CA_KEY, CA_CERT, SERVER_KEY, SERVER_CERT, ADMIN_TOKEN_FILE] {
            assert!(data.join(file).exists(), "{file}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for (file, mode) in [
                (DATABASE_FILE, 0o600),
                (CA_KEY, 0o600),
                (SERVER_KEY, 0o600),
                (ADMIN_TOKEN_FILE, 0o600),
            ] {
                let actual = std::fs::metadata(data.join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(actual & 0o777, mode, "{file}");
            }
        }
        let again = init(&data, None, &[]).unwrap_err();
        assert!(again.to_string().contains("already initialised"), "{again}");
    }

    #[test]
    fn serving_a_directory_with_only_a_config_says_to_initialise_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::new("127.0.0.1:0".parse().unwrap());
        std::fs::write(dir.path().join(CONFIG_FILE), config.to_commented_toml()).unwrap();
        let error = crate::server::load(dir.path(), config)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("is not initialised: run `steward-collector init --data-dir"),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn root_initialising_a_service_users_directory_leaves_every_file_to_it() {
        use std::os::unix::fs::MetadataExt;
        if !rustix_is_root() {
            return; // only root can give files away; CI runs the suite as root
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::chown(&data, Some(4242), Some(4343)).unwrap();
        init(&data, Some("127.0.0.1:0".parse().unwrap()), &[]).unwrap();
        for entry in std::fs::read_dir(&data).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (4242, 4343),
                "{}",
                entry.path().display()
            );
        }
    }

    #[cfg(unix)]
    fn rustix_is_root() -> bool {
        use std::os::unix::fs::MetadataExt;
        // The owner of a file this process creates is its effective uid.
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().metadata().unwrap().uid() == 0
    }
}
