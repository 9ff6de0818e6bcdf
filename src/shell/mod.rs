//! `zkrs shell`: a native client shell with zkCli.sh's commands and output, which
//! starts in milliseconds rather than a JVM's seconds. Three ways to run it, as zkCli:
//! one command given on the command line (its exit status says whether it worked), a
//! script on standard input, or interactively with line editing, a history file and tab
//! completion of commands and znode paths.

mod client;
mod commands;
mod hex_dump;
mod quota;

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use client::Session;
use commands::Outcome;

/// The session timeout zkCli asks for by default.
const DEFAULT_TIMEOUT_MS: i32 = 30_000;

/// Commands kept in the history file.
const HISTORY_LINES: usize = 1000;

/// Runs the shell with zkCli's arguments (`-server host:port,...`, `-timeout ms`,
/// `-waitforconnection`, then an optional command); returns the exit status.
pub fn run(arguments: &[String]) -> u8 {
    let mut servers = "localhost:2181".to_owned();
    let mut timeout_ms = DEFAULT_TIMEOUT_MS;
    let mut rest = arguments;
    loop {
        match rest {
            [flag, value, tail @ ..] if flag == "-server" => {
                servers.clone_from(value);
                rest = tail;
            }
            [flag, value, tail @ ..] if flag == "-timeout" => {
                timeout_ms = value.parse().unwrap_or(DEFAULT_TIMEOUT_MS);
                rest = tail;
            }
            [flag, tail @ ..] if flag == "-waitforconnection" || flag == "-r" => rest = tail,
            _ => break,
        }
    }
    let addresses = match Session::resolve(&servers) {
        Ok(addresses) => addresses,
        Err(err) => {
            eprintln!("{err}");
            return 1;
        }
    };
    println!("Connecting to {servers}");
    let mut session = Session::new(addresses, timeout_ms);
    if session.connect().is_err() && !rest.is_empty() {
        eprintln!("cannot connect to {servers}");
        return 1;
    }
    if !rest.is_empty() {
        let outcome = commands::run(&mut session, rest, &[]);
        session.close();
        return u8::from(outcome == Outcome::Failed);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return script(&mut session, stdin.lock());
    }
    interactive(session, &servers)
}

/// Runs each line of `input` as a command; the status is 1 if any failed.
fn script(session: &mut Session, input: impl BufRead) -> u8 {
    let mut history = Vec::new();
    let mut any_failed = false;
    for line in input.lines() {
        let Ok(line) = line else { break };
        match run_line(session, &line, &mut history) {
            Outcome::Quit => return u8::from(any_failed),
            Outcome::Failed => any_failed = true,
            Outcome::Done => {}
        }
    }
    session.close();
    client::print_event("Closed", "None", None);
    u8::from(any_failed)
}

/// Runs one line, `redo n` replaced by line `n` of the history, and records it.
fn run_line(session: &mut Session, line: &str, history: &mut Vec<String>) -> Outcome {
    let mut words: Vec<String> = split(line);
    if let [redo, number] = words.as_slice() {
        if redo == "redo" {
            match number.parse::<usize>().ok().and_then(|number| history.get(number)) {
                Some(earlier) => words = split(earlier),
                None => {
                    eprintln!("Command index out of range");
                    return Outcome::Failed;
                }
            }
        }
    }
    if words.is_empty() {
        return Outcome::Done;
    }
    history.push(words.join(" "));
    commands::run(session, &words, history)
}

/// Splits a line into words as zkCli does: on spaces, a quoted word kept whole.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for letter in line.chars() {
        match (quote, letter) {
            (Some(open), close) if open == close => quote = None,
            (Some(_), other) => current.push(other),
            (None, '"' | '\'') => {
                quote = Some(letter);
                started = true;
            }
            (None, ' ' | '\t') => {
                if started {
                    words.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            (None, other) => {
                current.push(other);
                started = true;
            }
        }
    }
    if started {
        words.push(current);
    }
    words
}

/// The history file: `~/.zkrs_shell_history`.
fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".zkrs_shell_history"))
}

fn interactive(session: Session, servers: &str) -> u8 {
    let session = Rc::new(RefCell::new(session));
    let config = rustyline::Config::builder().max_history_size(HISTORY_LINES).map_or_else(
        |_| rustyline::Config::default(),
        |builder| builder.auto_add_history(false).build(),
    );
    let mut editor: Editor<Completion, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(err) => {
            eprintln!("no line editing: {err}");
            return script(&mut session.borrow_mut(), std::io::stdin().lock());
        }
    };
    editor.set_helper(Some(Completion { session: session.clone() }));
    let file = history_file();
    if let Some(file) = &file {
        let _ = editor.load_history(file);
    }
    let mut history = Vec::new();
    loop {
        let state = if session.borrow().is_connected() { "CONNECTED" } else { "CONNECTING" };
        let prompt = format!("[zk: {servers}({state}) {}] ", history.len());
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let outcome = run_line(&mut session.borrow_mut(), &line, &mut history);
                if outcome == Outcome::Quit {
                    break;
                }
            }
            // Ctrl-C drops the line being typed, as a shell does.
            Err(ReadlineError::Interrupted) => {}
            Err(_) => {
                session.borrow_mut().close();
                break;
            }
        }
    }
    if let Some(file) = &file {
        let _ = editor.save_history(file);
    }
    0
}

/// Tab completion: a command name as the first word, a znode path (asking the server
/// for the children of the path's parent) after it.
struct Completion {
    session: Rc<RefCell<Session>>,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _context: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |space| space + 1);
        let word = &before[start..];
        let candidates: Vec<String> =
            if start == 0 {
                commands::USAGE
                    .iter()
                    .map(|(name, _)| (*name).to_owned())
                    .filter(|name| name.starts_with(word))
                    .collect()
            } else if let Some(relative) = word.strip_prefix('/') {
                let (parent, prefix) = match relative.rfind('/') {
                    Some(slash) => (&word[..=slash], &relative[slash + 1..]),
                    None => ("/", relative),
                };
                let names = self.session.borrow_mut().child_names(parent);
                names
                    .into_iter()
                    .filter(|name| name.starts_with(prefix))
                    .map(|name| {
                        if parent == "/" {
                            format!("/{name}")
                        } else {
                            format!("{parent}/{name}")
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let pairs = candidates
            .into_iter()
            .map(|candidate| Pair { display: candidate.clone(), replacement: candidate })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {}

impl Validator for Completion {}

impl Helper for Completion {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_words_and_quotes() {
        assert_eq!(split("create /a 'two words'"), vec!["create", "/a", "two words"]);
        assert_eq!(split("  ls   / "), vec!["ls", "/"]);
        assert_eq!(split("set /a \"\""), vec!["set", "/a", ""]);
    }
}
