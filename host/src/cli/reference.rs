//! The command reference (docs/cli.md) and the manual pages (docs/man/), made from the argument
//! definitions and checked current: a help text changed here and not there fails the test, and
//! `HOST_WRITE_DOCS=1 cargo test -p host --lib reference` writes them again.
//!
//! Everything is rendered in memory from `Cli::command()`, with nothing that changes between
//! runs or releases (no date, no version): the files change when the definitions do.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Arg, Command, CommandFactory as _};

/// The command that writes the files again.
const REGENERATE: &str = "HOST_WRITE_DOCS=1 cargo test -p host --lib reference";

/// The Markdown's line width (the book's).
const WIDTH: usize = 100;

/// The program's command tree, every subcommand's arguments built (they are deferred), without
/// clap's `help` subcommand (`--help` says the same).
fn program() -> Command {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The command and its visible subcommands, depth first, in their declared order.
fn commands(cmd: &Command) -> Vec<&Command> {
    let mut all = vec![cmd];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(commands(sub));
    }
    all
}

/// `host store rekey`.
fn full_name(cmd: &Command) -> &str {
    cmd.get_bin_name().unwrap_or_else(|| cmd.get_name())
}

/// The heading's anchor in the book (`host store rekey` → `host-store-rekey`).
fn anchor(cmd: &Command) -> String {
    full_name(cmd).replace(' ', "-")
}

/// Every generated file, by its path under docs/.
fn files() -> BTreeMap<String, String> {
    let program = program();
    let mut files = BTreeMap::new();
    files.insert("cli.md".to_owned(), markdown(&program));
    for cmd in commands(&program) {
        files.insert(format!("man/{}.1", anchor(cmd)), man_page(cmd));
    }
    files
}

// --- Manual pages ---------------------------------------------------------------------------

/// The command's manual page: clap_mangen's sections, without its VERSION (a new version would
/// make every page stale) and with the examples kept as lines, and a SEE ALSO to the parent.
fn man_page(cmd: &Command) -> String {
    use clap_mangen::roff::{Roff, bold, roman};
    type Section = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;

    // The title line's source is the program's name alone (by default the command's name and
    // the version); its date is left empty.
    let man = clap_mangen::Man::new(cmd.clone())
        .source("host")
        .manual("host manual");
    let mut sections: Vec<Section> = vec![
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
    ];
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        sections.push(clap_mangen::Man::render_options_section);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        sections.push(clap_mangen::Man::render_subcommands_section);
    }
    let mut extra = Roff::new();
    if let Some((heading, lines)) = examples(cmd) {
        extra.control("SH", [heading.to_uppercase().as_str()]);
        extra.control("nf", []);
        for line in lines {
            extra.text([roman(line)]);
        }
        extra.control("fi", []);
    }
    if let Some(parent) = parent_name(cmd) {
        extra.control("SH", ["SEE ALSO"]);
        extra.text([bold(parent.replace(' ', "-")), roman("(1)")]);
    }

    // Each part comes with roff's preamble (a string definition): kept once, at the top.
    let preamble = Roff::new().render();
    let mut page = preamble.clone();
    for section in sections {
        let mut part = Vec::new();
        section(&man, &mut part).expect("rendered in memory");
        let part = String::from_utf8(part).expect("UTF-8");
        page.push_str(part.strip_prefix(&preamble).unwrap_or(&part));
    }
    let extra = extra.render();
    page.push_str(extra.strip_prefix(&preamble).unwrap_or(&extra));
    page
}

/// `host store` for `host store rekey`; none for the program.
fn parent_name(cmd: &Command) -> Option<&str> {
    full_name(cmd).rsplit_once(' ').map(|(parent, _)| parent)
}

/// A command's `after_help`, when it is examples: the heading (`Examples`) and the lines,
/// unindented.
fn examples(cmd: &Command) -> Option<(String, Vec<String>)> {
    let text = cmd.get_after_help()?.to_string();
    let (first, rest) = text.split_once('\n')?;
    let heading = first.strip_suffix(':')?.to_owned();
    let lines = rest
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l).to_owned())
        .collect();
    Some((heading, lines))
}

// --- Markdown -------------------------------------------------------------------------------

/// docs/cli.md: an introduction, then a section per command.
fn markdown(program: &Command) -> String {
    let mut out = String::from("# Command reference\n\n");
    paragraph(
        &mut out,
        &format!(
            "Every command of `host`, its arguments and options, as `host <command> --help` \
             prints them. This page and a manual page per command in `docs/man/` (read one \
             with `man -l docs/man/host-token.1`) are generated from the argument definitions \
             in `host/src/cli/`: do not edit them, `{REGENERATE}` writes them again (the test \
             fails when they are stale)."
        ),
    );
    for cmd in commands(program) {
        section(&mut out, cmd, program);
    }
    out
}

fn section(out: &mut String, cmd: &Command, program: &Command) {
    out.push_str(&format!("\n## `{}`\n\n", full_name(cmd)));
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        for text in about.to_string().split("\n\n") {
            paragraph(out, text);
            out.push('\n');
        }
    }
    let usage = cmd.clone().render_usage().to_string();
    out.push_str(&format!("```text\n{}\n```\n", usage.trim_end()));

    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subcommands.is_empty() {
        out.push_str("\nCommands:\n\n");
        for sub in subcommands {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let link = format!("[`{}`](#{})", full_name(sub), anchor(sub));
            item(out, &link, &about);
        }
    }

    // The program's own options are the global ones; a subcommand's page lists its own.
    let is_program = std::ptr::eq(cmd, program);
    let shown = |a: &&Arg| {
        !a.is_hide_set()
            && (is_program
                || !(a.is_global_set() || ["help", "version"].contains(&a.get_id().as_str())))
    };
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) = cmd
        .get_arguments()
        .filter(shown)
        .partition(|a| a.is_positional());
    for (label, args) in [("Arguments", positionals), ("Options", options)] {
        if args.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{label}:\n\n"));
        for arg in args {
            item(out, &format!("`{}`", arg_spec(arg)), &arg_help(arg));
        }
    }
    if !is_program {
        out.push_str(&format!(
            "\nAnd the global options of [`{}`](#{}).\n",
            full_name(program),
            anchor(program)
        ));
    }

    if let Some((heading, lines)) = examples(cmd) {
        out.push_str(&format!("\n{heading}:\n\n```sh\n"));
        for line in lines {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str("```\n");
    }
}

/// `-p, --provider <PROVIDER>`, `<SHELL>`, `-- <CMD>...` (as `--help` writes them).
fn arg_spec(arg: &Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(_)) => format!("-{short}, {arg}"),
        _ => arg.to_string(),
    }
}

/// The argument's help, then its default and possible values, as `--help` adds them.
fn arg_help(arg: &Arg) -> String {
    let mut help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
    if takes_values && !arg.is_hide_default_value_set() && !arg.get_default_values().is_empty() {
        let values: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy())
            .collect();
        help.push_str(&format!(" [default: {}]", values.join(",")));
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    if !possible.is_empty() && !arg.is_hide_possible_values_set() {
        help.push_str(&format!(" [possible values: {}]", possible.join(", ")));
    }
    help
}

/// A list item: `- TERM: TEXT`, wrapped, its further paragraphs indented under it.
fn item(out: &mut String, term: &str, text: &str) {
    let mut paragraphs = text.split("\n\n");
    let first = paragraphs.next().unwrap_or_default();
    // The term is Markdown already: only the text is escaped.
    let head = if first.trim().is_empty() {
        format!("- {term}")
    } else {
        format!("- {term}: {}", escape(first))
    };
    wrap_into(out, &head, "  ");
    for more in paragraphs {
        out.push('\n');
        wrap_into(out, &format!("  {}", escape(more)), "  ");
    }
}

/// A paragraph of plain text, escaped and wrapped.
fn paragraph(out: &mut String, text: &str) {
    wrap_into(out, &escape(text), "");
}

/// What Markdown would read as markup in help text, outside its code spans, escaped
/// (`HOST_FIELD_<NAME>` is not an HTML tag).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code && matches!(c, '\\' | '<' | '>' | '*' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text`'s words in lines of at most [`WIDTH`] characters (a longer word has its own line),
/// the lines after the first starting with `indent`. A code span is a word (a command in one
/// piece is one to copy), and a word Markdown would read as the start of a list, a heading, a
/// quote or a rule at the start of a line stays on the line before.
fn wrap_into(out: &mut String, text: &str, indent: &str) {
    let mut words: Vec<String> = Vec::new();
    let mut open = false;
    for word in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if open => *last = format!("{last} {word}"),
            _ => words.push(word.to_owned()),
        }
        open ^= word.matches('`').count() % 2 == 1;
    }
    let lead = text.len() - text.trim_start().len();
    let mut line = text[..lead].to_owned();
    let mut empty = true;
    for word in &words {
        let fits = line.chars().count() + 1 + word.chars().count() <= WIDTH;
        if !empty && !fits && !starts_markup(word) {
            out.push_str(line.trim_end());
            out.push('\n');
            line = indent.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Whether `word` at the start of a line would be Markdown syntax rather than text.
fn starts_markup(word: &str) -> bool {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    word.starts_with(['-', '+', '*', '#', '>', '=', '|', '~'])
        || word.starts_with("```")
        || (digits > 0 && word[digits..].starts_with(['.', ')']))
}

// --- The check ------------------------------------------------------------------------------

/// docs/cli.md and docs/man/ are what the argument definitions make now. With
/// `HOST_WRITE_DOCS` set, what is stale is written again (and still reported, once).
#[test]
fn the_command_reference_is_current() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let files = files();
    let write = std::env::var_os("HOST_WRITE_DOCS").is_some();
    let mut stale = Vec::new();
    for (name, text) in &files {
        let path = docs.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
            }
            stale.push(format!("docs/{name}"));
        }
    }
    // The pages of commands that are gone.
    for entry in std::fs::read_dir(docs.join("man")).into_iter().flatten() {
        let name = format!("man/{}", entry.unwrap().file_name().to_string_lossy());
        if !files.contains_key(&name) {
            if write {
                std::fs::remove_file(docs.join(&name)).unwrap();
            }
            stale.push(format!("docs/{name} (no such command)"));
        }
    }
    assert!(
        stale.is_empty(),
        "{}",
        if write {
            format!("written again: run again ({})", stale.join(", "))
        } else {
            format!(
                "the command reference no longer matches the argument definitions: {}; \
                 regenerate it with `{REGENERATE}`",
                stale.join(", ")
            )
        }
    );
}

/// Every command has a page and a section, the hidden one and clap's `help` none; the text
/// after a command's help is its examples (the generator knows no other kind).
#[test]
fn every_visible_command_is_documented_once() {
    let program = program();
    for cmd in commands(&program) {
        let name = full_name(cmd);
        assert!(
            cmd.get_after_long_help().is_none(),
            "{name}: after_long_help"
        );
        assert!(
            cmd.get_after_help().is_none() || examples(cmd).is_some(),
            "{name}: an after_help that is not `Examples:` and lines: teach reference.rs to show it"
        );
    }
    let files = files();
    for name in ["man/host.1", "man/host-token.1", "man/host-store-rekey.1"] {
        assert!(files.contains_key(name), "{name}: {:?}", files.keys());
    }
    assert!(
        !files
            .keys()
            .any(|f| f.contains("help") || f.contains("git-credential"))
    );
    let md = &files["cli.md"];
    assert_eq!(md.matches("\n## `host store rekey`\n").count(), 1);
    assert!(!md.contains("git-credential"));
    for page in files.values() {
        assert!(!page.contains(env!("CARGO_PKG_VERSION")), "{page}");
    }
}

#[test]
fn wrapped_lines_never_start_markdown_syntax() {
    let mut out = String::new();
    let text = format!("{} - 1. # > done `a <b>` <c> `x y", "word ".repeat(19));
    wrap_into(&mut out, &escape(&text), "  ");
    let code = format!("`{}`", "code ".repeat(19).trim_end());
    wrap_into(&mut out, &format!("- {code} {code} text"), "  ");
    assert_eq!(
        out,
        format!(
            "{}- 1. #\n  \\> done `a <b>` \\<c\\> `x y\n- {code}\n  {code}\n  text\n",
            "word ".repeat(19)
        )
    );
}
