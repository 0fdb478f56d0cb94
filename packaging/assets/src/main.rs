//! `steward-assets OUT_DIR`: writes the man pages and shell completions of `steward-agent` and
//! `steward-collector` under OUT_DIR (see the library for the layout). Used by
//! scripts/packages.sh; not shipped.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: steward-assets OUT_DIR");
        return ExitCode::from(2);
    };
    match steward_assets::write_all(std::path::Path::new(&out)) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "steward-assets: writing under {}: {error}",
                out.to_string_lossy()
            );
            ExitCode::FAILURE
        }
    }
}
