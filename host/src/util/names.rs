//! Names that become file names: providers, accounts, plugins.

/// A provider, account or plugin name that cannot be used (it becomes a file name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid name: use letters, digits, `.`, `_` and `-` (at most 64, not starting with `.`)"
)]
pub struct BadName(pub(crate) String);

/// Checks that a provider, account or plugin name is a safe file name.
pub(crate) fn check_name(name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BadName(crate::util::text::sanitize(name, 64)))
    }
}

/// Variables the dynamic loader, shells and language runtimes read as instructions (what to
/// load, what to run at start-up, where to find programs), or that `host` itself reads: a token
/// put in one would be run, loaded or echoed (the loader prints `LD_PRELOAD`'s value when it
/// cannot load it), never used as a credential.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "PS1",
    "PS2",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "GLOBIGNORE",
    "HOME",
    "SHELL",
    "TMPDIR",
    "GCONV_PATH",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "NLSPATH",
    "LOCPATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GIT_EXEC_PATH",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "EDITOR",
    "VISUAL",
    "PAGER",
];

/// Prefixes of variables reserved as [`RESERVED_ENV`] is: the loaders' (`LD_`, `DYLD_`),
/// glibc's allocator switches, bash's exported functions, and `host`'s own settings.
const RESERVED_ENV_PREFIXES: &[&str] = &["LD_", "DYLD_", "MALLOC_", "BASH_FUNC_", "HOST_"];

/// Why `host exec` may not put a token in the variable `name`, if it may not: not a portable
/// variable name (letters, digits and `_`, not starting with a digit), or one the loader,
/// shells, language runtimes or `host` itself interpret (`LD_*`, `PATH`, `BASH_ENV`, `HOST_*`, …).
pub(crate) fn env_name_problem(name: &str) -> Option<&'static str> {
    let portable = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !portable {
        return Some(
            "is not an environment variable name (letters, digits and `_`, not starting with a digit)",
        );
    }
    let upper = name.to_ascii_uppercase();
    if RESERVED_ENV.contains(&upper.as_str())
        || RESERVED_ENV_PREFIXES.iter().any(|p| upper.starts_with(p))
    {
        return Some(
            "names a variable the dynamic loader, a shell, a language runtime or host itself interprets (LD_*, DYLD_*, PATH, IFS, BASH_ENV, HOST_*, …); choose a name of your own such as ACME_TOKEN",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_variables_the_loader_or_a_shell_reads_are_refused() {
        for ok in ["GITHUB_TOKEN", "acme_key", "_T", "X1"] {
            assert_eq!(env_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "LD_PRELOAD",
            "ld_library_path",
            "DYLD_INSERT_LIBRARIES",
            "PATH",
            "IFS",
            "BASH_ENV",
            "ENV",
            "PS4",
            "PROMPT_COMMAND",
            "HOST_STORE_KEY",
            "BASH_FUNC_x%%",
            "",
            "1X",
            "A-B",
            "A=B",
        ] {
            assert!(env_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn names() {
        for ok in ["github", "api-key", "a.b_c", "x1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
