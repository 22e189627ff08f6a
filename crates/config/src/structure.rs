//! nutcracker's shape rules, checked on the event stream before any value is
//! interpreted: a root mapping of pools, each pool a mapping of directives
//! with exactly one sequence (the `servers:` list), nothing deeper.

use crate::yaml::{Event, EventKind, Mark};

/// nutcracker's `CONF_ROOT_DEPTH`: pool names live at depth 1.
const ROOT_DEPTH: usize = 1;
/// nutcracker's `CONF_MAX_DEPTH`: directives live at depth 2.
const MAX_DEPTH: usize = 2;

/// Checks the shape; on failure returns where and what.
pub(crate) fn check(events: &[Event]) -> Result<(), (Mark, String)> {
    let mut depth = 0usize;
    let mut count = [0usize; MAX_DEPTH + 1];
    let mut seq = false;
    // Inside a list right now (nutcracker's `seq` stays set after the list).
    let mut in_list = false;
    // The pool whose mapping is open, for messages.
    let mut pool: Option<(String, Mark)> = None;
    let mut last_scalar: Option<(String, Mark)> = None;
    for ev in events {
        match &ev.kind {
            EventKind::MappingStart => {
                if depth == ROOT_DEPTH && count[depth] != 1 {
                    return Err((ev.mark, "has more than one \"key:value\" at depth 1 (a pool name must be followed by its directives)".into()));
                } else if depth >= MAX_DEPTH {
                    let what = match &last_scalar {
                        Some((k, _)) if !in_list => {
                            format!("directive \"{k}\" has a nested mapping")
                        }
                        _ => "a list item is a mapping".to_string(),
                    };
                    return Err((
                        ev.mark,
                        format!(
                            "has a depth greater than 2: {what}; directives take a single value"
                        ),
                    ));
                }
                if depth == ROOT_DEPTH {
                    pool = last_scalar.clone();
                }
                depth += 1;
            }
            EventKind::MappingEnd => {
                if depth == MAX_DEPTH {
                    if seq {
                        seq = false;
                    } else {
                        let (name, mark) = pool.clone().unwrap_or_default();
                        return Err((
                            mark,
                            format!("pool \"{name}\" has no \"servers:\" list (missing sequence directive at depth 2)"),
                        ));
                    }
                }
                depth = depth.saturating_sub(1);
                count[depth] = 0;
            }
            EventKind::SequenceStart => {
                if seq {
                    let name = pool.as_ref().map(|p| p.0.as_str()).unwrap_or_default();
                    return Err((
                        ev.mark,
                        format!("pool \"{name}\" has more than one sequence directive (only \"servers:\" is a list; a nested list is not allowed either)"),
                    ));
                } else if depth != MAX_DEPTH {
                    return Err((
                        ev.mark,
                        format!(
                            "has sequence at depth {depth} instead of 2 (only a pool's \"servers:\" may be a list)"
                        ),
                    ));
                } else if count[depth] != 1 {
                    return Err((ev.mark, "has invalid \"key:value\" at depth 2 (a list must follow a directive name)".into()));
                }
                seq = true;
                in_list = true;
            }
            EventKind::SequenceEnd => {
                in_list = false;
                count[depth] = 0;
            }
            EventKind::Scalar(v) => {
                if depth == 0 {
                    return Err((
                        ev.mark,
                        "has invalid empty \"key:\" at depth 0 (the file must be a mapping of pool names)".into(),
                    ));
                } else if depth == ROOT_DEPTH && count[depth] != 0 {
                    let name = last_scalar
                        .as_ref()
                        .map(|p| p.0.as_str())
                        .unwrap_or_default();
                    return Err((
                        ev.mark,
                        format!("has invalid mapping \"key:\" at depth 1: pool \"{name}\" must be a mapping of directives, not a single value"),
                    ));
                } else if depth == MAX_DEPTH && count[depth] == 2 {
                    count[depth] = 0;
                }
                count[depth] += 1;
                last_scalar = Some((v.clone(), ev.mark));
            }
        }
    }
    Ok(())
}
