//! OpenAI-with-gaps repair, one helper per field, shared by a whole answer's `message` and a
//! stream chunk's `delta`. Each records what it changed and says whether it changed anything
//! (notes are deduplicated, so they cannot tell a second change of the same kind).

use serde_json::{Map, Value, json};

use super::{Changes, finish_reason};
use crate::formats::answer::join_text_parts;

/// Where a field is repaired, for the notes.
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Message,
    Delta,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Delta => "delta",
        }
    }
}

/// Content as OpenAI has it: text or null. Parts are joined; anything else is written out.
pub fn content_to_text(object: &mut Map<String, Value>, part: Part, changes: &mut Changes) -> bool {
    let text = match object.get("content") {
        None | Some(Value::String(_) | Value::Null) => return false,
        Some(Value::Array(parts)) => {
            changes.note(format!(
                "joined {} content parts into a string",
                part.name()
            ));
            join_text_parts(parts)
        }
        Some(other) => {
            changes.note(format!("turned {} content into a string", part.name()));
            other.to_string()
        }
    };
    object.insert("content".into(), json!(text));
    true
}

/// vLLM and llama.cpp send nulls where OpenAI omits the field or sends a list.
pub fn drop_null_fields(
    object: &mut Map<String, Value>,
    part: Part,
    changes: &mut Changes,
) -> bool {
    let mut changed = false;
    for key in ["annotations", "function_call", "tool_calls"] {
        if object.get(key).is_some_and(Value::is_null) {
            object.remove(key);
            changes.note(format!("removed {}.{key}: null", part.name()));
            changed = true;
        }
    }
    changed
}

/// `reasoning` (vLLM's newer name) also as `reasoning_content`, which clients read.
pub fn copy_reasoning(object: &mut Map<String, Value>, changes: &mut Changes) -> bool {
    let Some(reasoning) = object.get("reasoning").filter(|r| r.is_string()).cloned() else {
        return false;
    };
    if object.contains_key("reasoning_content") {
        return false;
    }
    object.insert("reasoning_content".into(), reasoning);
    changes.note("copied reasoning to reasoning_content");
    true
}

/// Tool call arguments as OpenAI sends them: JSON text, not an object.
pub fn arguments_to_text(function: &mut Map<String, Value>, changes: &mut Changes) -> bool {
    let Some(arguments) = function
        .get("arguments")
        .filter(|a| !a.is_string() && !a.is_null())
    else {
        return false;
    };
    let text = arguments.to_string();
    function.insert("arguments".into(), json!(text));
    changes.note("serialized tool call arguments to a string");
    true
}

/// A finish reason spelled the target's way, in OpenAI's words.
pub fn map_finish_reason(choice: &mut Map<String, Value>, changes: &mut Changes) -> bool {
    let Some(Value::String(raw)) = choice.get("finish_reason") else {
        return false;
    };
    let mapped = finish_reason(raw);
    if mapped == raw {
        return false;
    }
    changes.note(format!("mapped finish_reason {raw} to {mapped}"));
    choice.insert("finish_reason".into(), json!(mapped));
    true
}

/// A `system_fingerprint` that is neither text nor null goes.
pub fn drop_invalid_fingerprint(object: &mut Map<String, Value>, changes: &mut Changes) -> bool {
    if object
        .get("system_fingerprint")
        .is_some_and(|v| !v.is_string() && !v.is_null())
    {
        object.remove("system_fingerprint");
        changes.note("dropped an invalid system_fingerprint");
        return true;
    }
    false
}

/// The `object` a body must name (`chat.completion`, `chat.completion.chunk`, `list`...).
pub fn set_object(object: &mut Map<String, Value>, expected: &str, changes: &mut Changes) -> bool {
    if object.get("object").and_then(Value::as_str) == Some(expected) {
        return false;
    }
    object.insert("object".into(), json!(expected));
    changes.note("set object");
    true
}

/// A `choices` list, empty when there was none.
pub fn fill_choices(object: &mut Map<String, Value>, changes: &mut Changes) -> bool {
    if object.get("choices").is_some_and(Value::is_array) {
        return false;
    }
    object.insert("choices".into(), json!([]));
    changes.note("filled choices");
    true
}

/// A choice's `index`, its place in the list when missing.
pub fn fill_index(choice: &mut Map<String, Value>, index: usize, changes: &mut Changes) -> bool {
    if choice.get("index").is_some_and(Value::is_u64) {
        return false;
    }
    choice.insert("index".into(), json!(index));
    changes.note("filled choices[].index");
    true
}
