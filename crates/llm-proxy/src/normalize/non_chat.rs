//! The answers that are not chat: legacy completions, embeddings and model listings.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::repair;
use super::{Changes, NormalizeError, RequestContext, finish_reason, has_text, shape_of};

/// `text_completion`: text from `text`, `message.content` or `generated_text`.
pub fn completion(value: &mut Value, context: &RequestContext) -> Result<Changes, NormalizeError> {
    let mut changes = Changes::new("openai");
    if value.is_array() || value.get("generated_text").is_some() {
        let one = if value.is_array() {
            value[0].clone()
        } else {
            value.clone()
        };
        let details = &one["details"];
        *value = json!({
            "choices": [{"text": one["generated_text"], "finish_reason": details["finish_reason"]}],
            "usage": {"prompt_tokens": 0, "completion_tokens": details["generated_tokens"].as_u64().unwrap_or(0)},
        });
        changes.format = "tgi";
        changes.note("translated from tgi");
    } else if value.get("response").is_some() && value.get("done").is_some() {
        let v = value.clone();
        *value = json!({
            "model": v["model"],
            "choices": [{"text": v["response"], "finish_reason": v["done_reason"]}],
            "usage": {"prompt_tokens": v["prompt_eval_count"].as_u64().unwrap_or(0), "completion_tokens": v["eval_count"].as_u64().unwrap_or(0)},
        });
        changes.format = "ollama";
        changes.note("translated from ollama");
    } else if value.get("choices").is_none() {
        return Err(NormalizeError::Unrecognized(shape_of(value)));
    }
    let Some(body) = value.as_object_mut() else {
        return Err(NormalizeError::Unrecognized(shape_of(value)));
    };
    fill_common(body, "text_completion", context, &mut changes);
    if let Some(Value::Array(choices)) = body.get_mut("choices") {
        for (i, choice) in choices.iter_mut().enumerate() {
            let Some(choice) = choice.as_object_mut() else {
                continue;
            };
            repair::fill_index(choice, i, &mut changes);
            if !choice.get("text").is_some_and(Value::is_string) {
                let text = choice
                    .get("message")
                    .and_then(|m| m.get("content"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                choice.insert("text".into(), json!(text));
                choice.remove("message");
                changes.note("took text from message.content");
            }
            if !choice.contains_key("logprobs") {
                choice.insert("logprobs".into(), Value::Null);
                changes.note("filled logprobs");
            }
            match choice.get("finish_reason").and_then(Value::as_str) {
                Some("stop" | "length" | "content_filter") => {}
                raw => {
                    let mapped = match finish_reason(raw.unwrap_or("stop")) {
                        "tool_calls" => "stop",
                        other => other,
                    };
                    choice.insert("finish_reason".into(), json!(mapped));
                    changes.note("mapped finish_reason");
                }
            }
        }
    }
    fill_usage(body, &mut changes);
    Ok(changes)
}

/// An embeddings list from OpenAI's shape, Ollama's `embeddings`/`embedding`, or plain vectors.
pub fn embeddings(value: &mut Value, model: &str, base64: bool) -> Result<Changes, NormalizeError> {
    let mut changes = Changes::new("openai");
    let vectors: Option<Vec<Value>> = if value.get("data").is_some() {
        None
    } else if let Some(list) = value.get("embeddings").and_then(Value::as_array) {
        changes.format = "ollama";
        Some(list.clone())
    } else if let Some(one) = value.get("embedding").filter(|e| e.is_array()) {
        changes.format = "ollama";
        Some(vec![one.clone()])
    } else if let Some(list) = value.as_array() {
        changes.format = "tgi";
        // A single vector, or one per input.
        if list.first().is_some_and(Value::is_number) {
            Some(vec![value.clone()])
        } else {
            Some(list.clone())
        }
    } else {
        return Err(NormalizeError::Unrecognized(shape_of(value)));
    };
    if let Some(vectors) = vectors {
        let prompt = value
            .get("prompt_eval_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let data: Vec<Value> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
            .collect();
        *value = json!({"object": "list", "data": data, "model": value.get("model").cloned().unwrap_or(json!(model)),
                        "usage": {"prompt_tokens": prompt, "total_tokens": prompt}});
        changes.note(format!("translated from {}", changes.format));
    }
    let Some(body) = value.as_object_mut() else {
        return Err(NormalizeError::Unrecognized("not an object".into()));
    };
    repair::set_object(body, "list", &mut changes);
    if !body.get("model").is_some_and(Value::is_string) {
        body.insert("model".into(), json!(model));
        changes.note("filled model");
    }
    if let Some(Value::Array(items)) = body.get_mut("data") {
        for (i, item) in items.iter_mut().enumerate() {
            if item.is_array() {
                *item = json!({"embedding": item.clone()});
            }
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            if item.get("object").and_then(Value::as_str) != Some("embedding") {
                item.insert("object".into(), json!("embedding"));
                changes.note("set data[].object");
            }
            if !item.get("index").is_some_and(Value::is_u64) {
                item.insert("index".into(), json!(i));
                changes.note("filled data[].index");
            }
            if base64 && let Some(Value::Array(floats)) = item.get("embedding") {
                let bytes: Vec<u8> = floats
                    .iter()
                    .flat_map(|f| (f.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
                    .collect();
                item.insert(
                    "embedding".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
                );
                changes.note("encoded embeddings as base64, as asked");
            }
        }
    }
    match body.get_mut("usage") {
        Some(Value::Object(usage)) => {
            if !usage.get("prompt_tokens").is_some_and(Value::is_u64) {
                usage.insert("prompt_tokens".into(), json!(0));
                changes.note("filled usage.prompt_tokens");
            }
            if !usage.get("total_tokens").is_some_and(Value::is_u64) {
                let total = usage["prompt_tokens"].clone();
                usage.insert("total_tokens".into(), total);
                changes.note("filled usage.total_tokens");
            }
        }
        _ => {
            body.insert(
                "usage".into(),
                json!({"prompt_tokens": 0, "total_tokens": 0}),
            );
            changes.note("usage unknown: filled zeros");
        }
    }
    Ok(changes)
}

/// A model list from OpenAI's shape, Ollama's `/api/tags` or Gemini's `models` (`models`), or
/// a bare array.
pub fn models(value: &mut Value) -> Result<Changes, NormalizeError> {
    let mut changes = Changes::new("openai");
    if value.get("data").is_none() {
        let list = match (value.get("models"), value.as_array()) {
            (Some(Value::Array(list)), _) => {
                let gemini = list
                    .iter()
                    .any(|m| m["name"].as_str().is_some_and(|n| n.starts_with("models/")));
                changes.format = if gemini { "gemini" } else { "ollama" };
                list.clone()
            }
            (_, Some(list)) => {
                changes.format = "bare-list";
                list.clone()
            }
            _ => return Err(NormalizeError::Unrecognized(shape_of(value))),
        };
        *value = json!({"object": "list", "data": list});
        changes.note(format!("translated from {}", changes.format));
    }
    if value.get("object").and_then(Value::as_str) != Some("list") {
        value["object"] = json!("list");
        changes.note("set object");
    }
    if let Some(Value::Array(items)) = value.get_mut("data") {
        for item in items.iter_mut() {
            repair_model(item, &mut changes);
        }
    }
    Ok(changes)
}

pub fn model(value: &mut Value) -> Result<Changes, NormalizeError> {
    let mut changes = Changes::new("openai");
    if !value.is_object() {
        return Err(NormalizeError::Unrecognized(shape_of(value)));
    }
    repair_model(value, &mut changes);
    Ok(changes)
}

fn repair_model(item: &mut Value, changes: &mut Changes) {
    if let Some(name) = item.as_str() {
        *item = json!({"id": name});
        changes.note("turned a model name into a model object");
    }
    let Some(model) = item.as_object_mut() else {
        return;
    };
    if !model.get("id").is_some_and(Value::is_string) {
        let name = model
            .get("name")
            .or_else(|| model.get("model"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        // Gemini names models `models/<id>`, and takes the id alone in its paths.
        let id = name.strip_prefix("models/").unwrap_or(name).to_owned();
        model.insert("id".into(), json!(id));
        changes.note("filled model id");
    }
    if model.get("object").and_then(Value::as_str) != Some("model") {
        model.insert("object".into(), json!("model"));
        changes.note("set model object");
    }
    if !model.get("created").is_some_and(Value::is_u64) {
        // Ollama's `modified_at`, Anthropic's `created_at`.
        let created = ["modified_at", "created_at"]
            .iter()
            .find_map(|key| model.get(*key))
            .and_then(Value::as_str)
            .and_then(parse_rfc3339_seconds)
            .unwrap_or(0);
        model.insert("created".into(), json!(created));
        changes.note("filled model created");
    }
    if !model.get("owned_by").is_some_and(Value::is_string) {
        model.insert("owned_by".into(), json!("organization-owner"));
        changes.note("filled model owned_by");
    }
}

/// Seconds since 1970 of an RFC 3339 time such as Ollama's `2024-06-04T14:38:31.83753-07:00`.
fn parse_rfc3339_seconds(text: &str) -> Option<u64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp()).ok()
}

fn fill_common(
    body: &mut Map<String, Value>,
    object: &str,
    context: &RequestContext,
    changes: &mut Changes,
) {
    let model = context.model.as_str();
    if !has_text(body.get("id")) {
        body.insert(
            "id".into(),
            json!(format!("cmpl-{}", context.stamp.suffix())),
        );
        changes.note("filled id");
    }
    repair::set_object(body, object, changes);
    if !body.get("created").is_some_and(Value::is_u64) {
        body.insert("created".into(), json!(context.stamp.created));
        changes.note("filled created");
    }
    if !body.get("model").is_some_and(Value::is_string) {
        body.insert("model".into(), json!(model));
        changes.note("filled model");
    }
    repair::fill_choices(body, changes);
}

fn fill_usage(body: &mut Map<String, Value>, changes: &mut Changes) {
    let usage = body.entry("usage").or_insert_with(|| json!({}));
    if !usage.is_object() {
        *usage = json!({});
    }
    for key in ["prompt_tokens", "completion_tokens"] {
        if !usage.get(key).is_some_and(Value::is_u64) {
            usage[key] = json!(0);
            changes.note(format!("filled usage.{key}"));
        }
    }
    if !usage.get("total_tokens").is_some_and(Value::is_u64) {
        let total = usage["prompt_tokens"].as_u64().unwrap_or(0)
            + usage["completion_tokens"].as_u64().unwrap_or(0);
        usage["total_tokens"] = json!(total);
        changes.note("filled usage.total_tokens");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(parse_rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_seconds("2024-06-04T14:38:31.83753-07:00"),
            Some(1_717_537_111)
        );
        assert_eq!(parse_rfc3339_seconds("nonsense"), None);
    }
}
