//! The sandbox the engine runs in: bubblewrap (`bwrap`, Debian package `bubblewrap`), started
//! by spe-runner after it has read the run spec and checked the workflow.
//!
//! What the engine sees ([`View`]):
//!
//! | path inside | what | access |
//! |---|---|---|
//! | `/usr`, `/bin`, `/lib*`, `/sbin` and a short list of `/etc` files ([`ETC_ALLOWLIST`]) | the system | read-only |
//! | the engine's install (its folder; for a Python venv the venv and its base Python) | the engine | read-only |
//! | `workflow_dir` of the spec | the runner's private copy of the approved files, whose digest it checked | read-only |
//! | each of `datasets` of the spec | the run's own datasets, nothing else of them | read-only |
//! | `run_dir` | the run directory | read-write |
//! | `run_dir/<run_id>.yaml` | the params file | read-only |
//! | `run_dir/.spe` (the run spec, the job script) | an empty, read-only folder | none |
//! | `run_dir/.weskit` (logs of this and earlier attempts) | empty; for Nextflow, this attempt's log folder is a private folder where its trace goes, copied into the real one by the runner after the run | none |
//! | `/tmp` | a private scratch on the node (`HOME=/tmp/home`, `TMPDIR=/tmp`) | read-write |
//! | `/proc`, `/dev` | the sandbox's own (new PID namespace; minimal devices) | |
//!
//! Everything else is the sandbox's own empty root, read-only. Nothing else exists: no other run, no other dataset, no service config, no home directory,
//! no munge key, no Slurm config. The sandbox has its own network namespace (its only interface
//! is its own loopback: 127.0.0.1 inside is not the host's), its own PID, IPC and UTS namespaces, holds no capabilities even when the
//! runner is root, and dies with the runner (`--die-with-parent`).
//!
//! Signals: the runner forwards SIGTERM/SIGINT to the engine's process group, and Slurm signals
//! every process of the job. bubblewrap itself would die of SIGTERM and take the engine with it
//! before the engine could clean up (Snakemake deletes incomplete outputs). So `bwrap` starts
//! with SIGTERM and SIGINT ignored, and the engine is started through
//! `env --default-signal=TERM,INT`, which restores them: the engine gets the signal, bwrap
//! waits for it to end. No `--new-session`, so the engine stays in the runner's process group
//! (a Slurm batch job has no terminal to abuse).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use spe_core::engine::Engine;
use spe_core::runspec::RunSpec;

/// Top-level system folders shown read-only (as symlinks where the host has symlinks, e.g.
/// `/bin -> usr/bin` on merged-/usr systems).
pub const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"];

/// Entries of `/etc` an engine needs (dynamic linker, users and groups for `getpwuid`, time
/// zone, `alternatives` for `/usr/bin/java`, hosts for the JVM's local name). Everything else
/// of `/etc` (service config, munge key, Slurm config, credentials) stays out. Folders named
/// `java-*` (the JDK's config on Debian) are added by [`View::bwrap_args`].
pub const ETC_ALLOWLIST: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "nsswitch.conf",
    "localtime",
    "timezone",
    "alternatives",
    "hosts",
    "mime.types",
];

/// Where the private scratch appears inside the sandbox.
pub const SCRATCH: &str = "/tmp";
/// `HOME` inside the sandbox (created in the scratch).
pub const HOME: &str = "/tmp/home";

/// Everything the sandbox shows, as host paths. Built by [`View::for_spec`].
#[derive(Debug, Clone)]
pub struct View {
    /// The private copy of the workflow (host path) and where the engine sees it.
    pub workflow_copy: PathBuf,
    pub workflow_dir: PathBuf,
    pub datasets: Vec<PathBuf>,
    pub run_dir: PathBuf,
    /// Files inside `run_dir` shown read-only (the params file).
    pub read_only_in_run: Vec<PathBuf>,
    /// Folders inside `run_dir` shown empty and read-only.
    pub hidden_read_only: Vec<PathBuf>,
    /// Folders inside `run_dir` shown empty (a discarded tmpfs).
    pub hidden: Vec<PathBuf>,
    /// For engines that write a file into the log folder (Nextflow's trace): a private folder
    /// (host path) shown at the log folder's path. The real log folder, where log.json goes,
    /// is never writable from inside; see [`collect_engine_logs`].
    pub engine_logs: Option<(PathBuf, PathBuf)>,
    /// The engine's install, read-only.
    pub engine_paths: Vec<PathBuf>,
    /// The private scratch (host path), shown at [`SCRATCH`].
    pub scratch: PathBuf,
    /// A params file naming decrypted inputs (host path) and the params file it is shown as
    /// (see [`crate::crypt4gh`]).
    pub params_copy: Option<(PathBuf, PathBuf)>,
}

impl View {
    /// The view of one run. `private` is a fresh folder of the runner's, outside everything
    /// the sandbox shows, made ready by [`prepare_private`]; `engine_paths` come from
    /// [`engine_install`].
    pub fn for_spec(
        spec: &RunSpec,
        engine: Engine,
        private: &Path,
        engine_paths: Vec<PathBuf>,
    ) -> View {
        let run_dir = spec.run_dir.clone();
        let engine_logs = match engine {
            // -with-trace <log_dir>/trace.txt: the trace lands in the private folder.
            Engine::Nextflow => Some((private.join("logs"), spec.log_dir.clone())),
            Engine::Snakemake => None,
        };
        View {
            workflow_copy: private.join("workflow"),
            workflow_dir: spec.workflow_dir.clone(),
            datasets: spec.datasets.clone(),
            read_only_in_run: vec![spec.params_file.clone()],
            hidden_read_only: vec![run_dir.join(".spe")],
            hidden: vec![run_dir.join(".weskit")],
            engine_logs,
            run_dir,
            engine_paths,
            scratch: private.join("scratch"),
            params_copy: None,
        }
    }

    /// bwrap's arguments up to (not including) the command. Mounts are applied in order, so
    /// the scratch at `/tmp` comes before anything that may live under `/tmp` on the host.
    pub fn bwrap_args(&self) -> Vec<OsString> {
        let mut a = Args::default();
        a.flag("--die-with-parent");
        a.flag("--unshare-net");
        a.flag("--unshare-pid");
        a.flag("--unshare-ipc");
        a.flag("--unshare-uts");
        a.flag("--unshare-cgroup-try");
        a.flag("--cap-drop");
        a.flag("ALL");
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::read_link(path) {
                Ok(target) => a.two("--symlink", target.as_os_str(), path),
                Err(_) if path.is_dir() => a.two("--ro-bind", path, path),
                Err(_) => {}
            }
        }
        let etc = Path::new("/etc");
        for name in ETC_ALLOWLIST {
            let path = etc.join(name);
            a.two("--ro-bind-try", &path, &path);
        }
        if let Ok(entries) = std::fs::read_dir(etc) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with("java-") {
                    let path = entry.path();
                    a.two("--ro-bind", &path, &path);
                }
            }
        }
        a.one("--proc", Path::new("/proc"));
        a.one("--dev", Path::new("/dev"));
        a.two("--bind", &self.scratch, Path::new(SCRATCH));
        for path in &self.engine_paths {
            a.two("--ro-bind", path, path);
        }
        a.two("--bind", &self.run_dir, &self.run_dir);
        for path in &self.read_only_in_run {
            a.two("--ro-bind", path, path);
        }
        if let Some((copy, shown_at)) = &self.params_copy {
            a.two("--ro-bind", copy, shown_at);
        }
        for path in &self.hidden_read_only {
            a.one("--tmpfs", path);
            a.one("--remount-ro", path);
        }
        for path in &self.hidden {
            a.one("--tmpfs", path);
        }
        if let Some((private, shown_at)) = &self.engine_logs {
            a.two("--bind", private, shown_at);
        }
        a.two("--ro-bind", &self.workflow_copy, &self.workflow_dir);
        for path in &self.datasets {
            a.two("--ro-bind", path, path);
        }
        // The sandbox's own root (a tmpfs holding the mount points) read-only too: a write
        // anywhere but the run dir and the scratch fails instead of vanishing with the tmpfs.
        a.one("--remount-ro", Path::new("/"));
        a.one("--chdir", &self.run_dir);
        a.0
    }

    /// Paths the view binds that must exist on the host; the first missing one is an error
    /// naming it (bwrap's own message would not say which run input is missing).
    pub fn check_sources(&self) -> Result<(), String> {
        for path in &self.datasets {
            if !path.is_absolute() || !path.exists() {
                return Err(format!(
                    "dataset location {} is not reachable on this node",
                    path.display()
                ));
            }
        }
        for path in self
            .engine_paths
            .iter()
            .chain(&self.read_only_in_run)
            .chain(self.engine_logs.as_ref().map(|(private, _)| private))
            .chain(self.params_copy.as_ref().map(|(copy, _)| copy))
            .chain([&self.run_dir, &self.workflow_copy, &self.scratch])
        {
            if !path.exists() {
                return Err(format!("{} does not exist", path.display()));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, f: &str) {
        self.0.push(f.into());
    }
    fn one(&mut self, f: &str, p: &Path) {
        self.0.push(f.into());
        self.0.push(p.as_os_str().to_owned());
    }
    fn two(&mut self, f: &str, from: impl AsRef<std::ffi::OsStr>, to: &Path) {
        self.0.push(f.into());
        self.0.push(from.as_ref().to_owned());
        self.0.push(to.as_os_str().to_owned());
    }
}

/// The command that runs `argv` (executable first) inside `view`, through the `bwrap` at
/// `bwrap`. SIGTERM and SIGINT are ignored by bwrap and restored for `argv` (see the module
/// documentation). The caller sets the environment, stdio and process group.
pub fn command(bwrap: &Path, view: &View, argv: &[String]) -> std::process::Command {
    let mut command = std::process::Command::new(bwrap);
    command
        .args(view.bwrap_args())
        .arg("--")
        .arg("/usr/bin/env")
        .arg("--default-signal=TERM,INT")
        .arg("--")
        .args(argv);
    // SAFETY: between fork and exec only signal(2), which is async-signal-safe, is called.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    command
}

/// Finds an executable: a path with a `/` as given, else the first match on `path_var`.
pub fn find_executable(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    path_var?
        .split(':')
        .filter(|dir| dir.starts_with('/'))
        .map(|dir| Path::new(dir).join(name))
        .find(|p| is_exe(p))
}

fn is_system(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| path.starts_with(d))
}

/// What of the engine's install the sandbox must show read-only, for the executable at
/// `exe` (already resolved): nothing if it lives in the system folders; for a Python venv
/// (`<venv>/bin/<exe>` beside `<venv>/pyvenv.cfg`) the venv and its base Python's prefix;
/// otherwise the executable's folder. Never a whole home directory unless the install is one.
pub fn engine_install(exe: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    if is_system(&exe) {
        return paths;
    }
    let Some(bin) = exe.parent() else {
        return paths;
    };
    let venv = bin.parent().filter(|v| v.join("pyvenv.cfg").is_file());
    match venv {
        Some(venv) => {
            paths.push(venv.to_path_buf());
            if let Some(prefix) = venv_base_prefix(&venv.join("pyvenv.cfg"))
                && !is_system(&prefix)
                && !prefix.starts_with(venv)
            {
                paths.push(prefix);
            }
        }
        None => paths.push(bin.to_path_buf()),
    }
    paths
}

/// The base Python's prefix of a venv: the parent of `home = <prefix>/bin` in pyvenv.cfg.
fn venv_base_prefix(cfg: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(cfg).ok()?;
    let home = text.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == "home").then(|| value.trim().to_owned())
    })?;
    let home = std::fs::canonicalize(home).ok()?;
    home.parent().map(Path::to_path_buf)
}

/// Makes a fresh private folder ready for [`View::for_spec`]: `workflow/` holding the checked
/// files ([`stage_workflow`]), `scratch/home/` and `logs/`.
pub fn prepare_private(private: &Path, files: &[(String, Vec<u8>)]) -> Result<(), String> {
    for dir in ["workflow", "scratch/home", "logs"] {
        std::fs::create_dir_all(private.join(dir))
            .map_err(|e| format!("cannot create the private folder: {e}"))?;
    }
    stage_workflow(files, &private.join("workflow"))
}

/// Most bytes of an engine's log file the runner copies out of the sandbox.
pub const MAX_ENGINE_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// After the engine has ended: copies the files an engine may leave in its private log folder
/// (only `names`, e.g. Nextflow's `trace.txt`) into the real log folder. Job-written files are
/// opened without following a link, must be regular files, and are cut at
/// [`MAX_ENGINE_LOG_BYTES`]; the copy never replaces an existing file.
pub fn collect_engine_logs(view: &View, names: &[&str]) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Some((private, log_dir)) = &view.engine_logs else {
        return Ok(());
    };
    for name in names {
        let from = private.join(name);
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&from)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("engine log {name} cannot be read: {e}")),
        };
        let is_file = file.metadata().is_ok_and(|m| m.is_file());
        if !is_file {
            return Err(format!("engine log {name} is not a regular file"));
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(log_dir.join(name))
            .map_err(|e| format!("engine log {name} cannot be copied: {e}"))?;
        std::io::copy(&mut file.take(MAX_ENGINE_LOG_BYTES), &mut out)
            .map_err(|e| format!("engine log {name} cannot be copied: {e}"))?;
    }
    Ok(())
}

/// Writes the checked workflow files into `dest` (a fresh private folder): the copy the
/// sandbox shows. The bytes are those whose digest was checked, so what runs is what was
/// approved, whatever happens to the registry folder afterwards. Names are relative paths
/// without `..` (checked again: the spec names them).
pub fn stage_workflow(files: &[(String, Vec<u8>)], dest: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (rel, content) in files {
        let relative = Path::new(rel);
        let plain = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(format!(
                "workflow file name {rel:?} is not a plain relative path"
            ));
        }
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot stage the workflow: {e}"))?;
        }
        std::fs::write(&target, content).map_err(|e| format!("cannot stage the workflow: {e}"))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o444))
            .map_err(|e| format!("cannot stage the workflow: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venv_installs_bind_the_venv_and_its_base_python_only() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("pythons/3.11");
        std::fs::create_dir_all(base.join("bin")).unwrap();
        let venv = tmp.path().join("home/.cache/venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.11\n", base.join("bin").display()),
        )
        .unwrap();
        std::fs::write(venv.join("bin/snakemake"), "#!/bin/sh\n").unwrap();
        let base = std::fs::canonicalize(base).unwrap();
        let venv = std::fs::canonicalize(venv).unwrap();
        assert_eq!(engine_install(&venv.join("bin/snakemake")), [venv, base]);
        let plain = tmp.path().join("tools/bin");
        std::fs::create_dir_all(&plain).unwrap();
        std::fs::write(plain.join("nextflow"), "#!/bin/sh\n").unwrap();
        let plain = std::fs::canonicalize(plain).unwrap();
        assert_eq!(engine_install(&plain.join("nextflow")), [plain]);
        assert!(engine_install(Path::new("/usr/bin/env")).is_empty());
    }

    #[test]
    fn staged_names_must_be_plain_relative_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["/etc/x", "../x", "a/../../x"] {
            let err = stage_workflow(&[(bad.to_owned(), b"x".to_vec())], tmp.path());
            assert!(err.is_err(), "{bad} staged");
        }
        stage_workflow(&[("rules/a.smk".to_owned(), b"x".to_vec())], tmp.path()).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("rules/a.smk")).unwrap(), b"x");
    }
}
