//! The Response object and its output items, made from a chat answer.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::item_id;
use crate::formats::usage::estimate_tokens;

/// What every state of one Response shares: its id, its time and the request's echoed fields.
#[derive(Debug, Clone)]
pub struct Skeleton {
    /// `resp_…`.
    pub id: String,
    pub created_at: u64,
    /// The random part the output items' ids share.
    pub suffix: String,
    pub echo: Echo,
    /// How the chat functions offered map back to the request's tools.
    pub tools: ToolNames,
    /// Characters of the prompt, for an estimate when the target reports no usage.
    pub prompt_chars: usize,
}

/// The request's fields a Response echoes, as OpenAI returns them (its defaults where the
/// request has none).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Echo {
    pub background: bool,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub max_tool_calls: Value,
    pub metadata: Map<String, Value>,
    pub parallel_tool_calls: bool,
    pub previous_response_id: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub reasoning: ReasoningEcho,
    pub safety_identifier: Option<String>,
    pub service_tier: Value,
    pub store: bool,
    pub temperature: f64,
    pub text: TextEcho,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub top_logprobs: Value,
    pub top_p: f64,
    pub truncation: Value,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReasoningEcho {
    pub effort: Value,
    pub summary: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TextEcho {
    pub format: Value,
    pub verbosity: Value,
}

/// A Response as it is written: borrowed from the skeleton and the state, serialized without
/// a JSON tree.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    error: Option<Failure<'a>>,
    incomplete_details: Option<Incomplete>,
    model: &'a str,
    output: &'a [Value],
    /// None while in progress: the spec has no null usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
    #[serde(flatten)]
    echo: &'a Echo,
}

#[derive(Serialize)]
struct Failure<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct Incomplete {
    reason: &'static str,
}

/// How the chat functions offered for a request's tools map back to them.
#[derive(Debug, Clone, Default)]
pub struct ToolNames {
    /// Custom (freeform) tools, offered as functions of one string argument, `input`.
    pub custom: Vec<String>,
    /// Functions inside a `namespace` tool, offered as `{namespace}__{name}`: that chat name,
    /// the namespace and the name.
    pub namespaced: Vec<(String, String, String)>,
}

impl ToolNames {
    pub fn is_custom(&self, chat_name: &str) -> bool {
        self.custom.iter().any(|custom| custom == chat_name)
    }

    /// The namespace (if any) and the name of the tool a chat function name stands for.
    pub fn split<'a>(&'a self, chat_name: &'a str) -> (Option<&'a str>, &'a str) {
        self.namespaced
            .iter()
            .find(|(flat, _, _)| flat == chat_name)
            .map_or((None, chat_name), |(_, namespace, name)| {
                (Some(namespace.as_str()), name.as_str())
            })
    }
}

/// The chat function name of a function inside a namespace.
pub fn namespaced_name(namespace: &str, name: &str) -> String {
    format!("{namespace}__{name}")
}

/// A Response's own state, beside what every state shares ([`Skeleton`]).
#[derive(Debug)]
pub struct State<'a> {
    pub status: Status,
    pub model: &'a str,
    pub output: &'a [Value],
    /// The chat answer's usage; `None`: estimated from `output_chars`.
    pub usage: Option<&'a Value>,
    pub output_chars: usize,
    /// A failure's message.
    pub error: Option<&'a str>,
}

/// How a Response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Cut short, for the reason (`max_output_tokens`, `content_filter`).
    Incomplete(&'static str),
    Failed,
}

impl Status {
    /// From a chat finish reason.
    pub fn of_finish(finish_reason: Option<&str>) -> Self {
        match finish_reason {
            Some("length") => Self::Incomplete("max_output_tokens"),
            Some("content_filter") => Self::Incomplete("content_filter"),
            _ => Self::Completed,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete(_) => "incomplete",
            Self::Failed => "failed",
        }
    }
}

impl Skeleton {
    fn body<'a>(&'a self, state: &'a State<'a>) -> Body<'a> {
        let usage = match (state.status, state.usage) {
            (Status::InProgress, _) => None,
            (_, Some(usage)) => Some(response_usage(usage)),
            (_, None) => {
                let input = estimate_tokens(self.prompt_chars);
                let output = estimate_tokens(state.output_chars);
                Some(usage_object(input, 0, output, 0))
            }
        };
        Body {
            id: &self.id,
            object: "response",
            created_at: self.created_at,
            status: state.status.name(),
            error: state.error.map(|message| Failure {
                code: "server_error",
                message,
            }),
            incomplete_details: match state.status {
                Status::Incomplete(reason) => Some(Incomplete { reason }),
                _ => None,
            },
            model: state.model,
            output: state.output,
            usage,
            echo: &self.echo,
        }
    }

    /// Writes the Response at `state` as JSON: its usage is the chat answer's (estimated from
    /// the output's characters when the target gave none; none while in progress), its error
    /// a failure's message.
    pub fn write(&self, state: &State<'_>, out: &mut Vec<u8>) {
        // Serializing into a Vec cannot fail.
        let _ = serde_json::to_writer(out, &self.body(state));
    }

    /// The Response at `state` as a JSON tree: for the store and the log, once per answer.
    pub fn response(&self, state: &State<'_>) -> Value {
        serde_json::to_value(self.body(state)).unwrap_or_default()
    }

    /// A tool call as its output item, `function_call` or (for a custom tool, whose one
    /// argument is its input) `custom_tool_call`.
    pub fn call_item(&self, index: usize, call_id: &str, name: &str, arguments: &str) -> Value {
        if self.tools.is_custom(name) {
            return json!({"id": item_id("ctc", &self.suffix, index), "type": "custom_tool_call",
                "status": "completed", "call_id": call_id, "name": name, "input": custom_input(arguments)});
        }
        let mut item = json!({"id": item_id("fc", &self.suffix, index), "type": "function_call",
            "status": "completed", "arguments": arguments, "call_id": call_id, "name": name});
        if let (Some(namespace), name) = self.tools.split(name) {
            item["namespace"] = json!(namespace);
            item["name"] = json!(name);
        }
        item
    }
}

/// A custom tool's input from the arguments of the function it was offered as; the arguments
/// themselves when a model wrote something else.
pub fn custom_input(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v["input"].as_str().map(str::to_owned))
        .unwrap_or_else(|| arguments.to_owned())
}

/// A JSON object of these fields, moved in: `json!` would copy a `Value` through its
/// serializer.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// A message output item holding `text`.
pub fn message_item(id: String, text: &str, status: &str) -> Value {
    fields([
        ("id", id.into()),
        ("type", "message".into()),
        ("status", status.into()),
        ("role", "assistant".into()),
        ("content", Value::Array(vec![output_text(text)])),
    ])
}

/// An `output_text` content part.
pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A reasoning output item holding `text`.
pub fn reasoning_item(id: String, text: &str) -> Value {
    json!({"id": id, "type": "reasoning", "summary": [],
        "content": [{"type": "reasoning_text", "text": text}]})
}

/// A chat `usage` object in the Responses API's terms.
pub fn response_usage(usage: &Value) -> Value {
    let count = |key: &str| usage[key].as_u64().unwrap_or(0);
    usage_object(
        count("prompt_tokens"),
        usage
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        count("completion_tokens"),
        usage
            .pointer("/completion_tokens_details/reasoning_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    )
}

fn usage_object(input: u64, cached: u64, output: u64, reasoning: u64) -> Value {
    fields([
        ("input_tokens", input.into()),
        (
            "input_tokens_details",
            fields([
                ("cached_tokens", cached.into()),
                ("cache_write_tokens", 0.into()),
            ]),
        ),
        ("output_tokens", output.into()),
        (
            "output_tokens_details",
            fields([("reasoning_tokens", reasoning.into())]),
        ),
        ("total_tokens", (input + output).into()),
    ])
}

/// A chat completion as [`response_from_completion`] reads it: typed, borrowing its texts (no
/// JSON tree for a body that is read once).
#[derive(Debug, Deserialize)]
struct Completion<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<ChoiceMessage<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct ChoiceMessage<'a> {
    /// Text, or parts (a repaired answer's).
    #[serde(default)]
    content: Option<Value>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<CompletionCall<'a>>>,
}

#[derive(Debug, Deserialize)]
struct CompletionCall<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: CompletionFunction<'a>,
}

#[derive(Debug, Deserialize)]
struct CompletionFunction<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// A whole chat completion (its JSON text) as the Response object's JSON text, and what could
/// not be carried (for the log); `Err` when it is not a chat completion.
pub fn response_from_completion(
    skeleton: &Skeleton,
    completion: &[u8],
) -> Result<(Vec<u8>, Vec<String>), serde_json::Error> {
    let completion: Completion<'_> = serde_json::from_slice(completion)?;
    let mut notes = Vec::new();
    if completion.choices.len() > 1 {
        notes.push("answers past the first choice".to_owned());
    }
    let (message, finish_reason) = match completion.choices.into_iter().next() {
        Some(choice) => (choice.message.unwrap_or_default(), choice.finish_reason),
        None => (ChoiceMessage::default(), None),
    };
    let mut output = Vec::new();
    let mut chars = 0;
    if let Some(reasoning) = message
        .reasoning_content
        .as_deref()
        .or(message.reasoning.as_deref())
        .filter(|r| !r.is_empty())
    {
        chars += reasoning.len();
        let id = item_id("rs", &skeleton.suffix, output.len());
        output.push(reasoning_item(id, reasoning));
    }
    let text = match &message.content {
        Some(Value::String(text)) => Cow::Borrowed(text.as_str()),
        Some(Value::Array(parts)) => Cow::Owned(crate::formats::answer::join_text_parts(parts)),
        _ => Cow::Borrowed(""),
    };
    let refusal = message.refusal.as_deref().filter(|r| !r.is_empty());
    if !text.is_empty() || refusal.is_some() {
        chars += text.len();
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(output_text(&text));
        }
        if let Some(refusal) = refusal {
            content.push(fields([
                ("type", "refusal".into()),
                ("refusal", refusal.into()),
            ]));
        }
        output.push(fields([
            ("id", item_id("msg", &skeleton.suffix, output.len()).into()),
            ("type", "message".into()),
            ("status", "completed".into()),
            ("role", "assistant".into()),
            ("content", Value::Array(content)),
        ]));
    }
    for (k, call) in message.tool_calls.iter().flatten().enumerate() {
        let arguments = call.function.arguments.as_deref().unwrap_or("{}");
        let call_id = call
            .id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map_or_else(|| format!("call_{}{k}", skeleton.suffix), str::to_owned);
        chars += arguments.len();
        output.push(skeleton.call_item(output.len(), &call_id, &call.function.name, arguments));
    }
    let state = State {
        status: Status::of_finish(finish_reason.as_deref()),
        model: completion.model.as_deref().unwrap_or_default(),
        output: &output,
        usage: completion.usage.as_ref().filter(|u| u.is_object()),
        output_chars: chars,
        error: None,
    };
    let mut json = Vec::with_capacity(1024);
    skeleton.write(&state, &mut json);
    Ok((json, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skeleton() -> Skeleton {
        Skeleton {
            id: "resp_x".into(),
            created_at: 7,
            suffix: "x".into(),
            echo: Echo::default(),
            tools: ToolNames {
                custom: vec!["apply_patch".into()],
                namespaced: vec![("agents__spawn".into(), "agents".into(), "spawn".into())],
            },
            prompt_chars: 40,
        }
    }

    #[test]
    fn a_completion_with_text_and_calls_becomes_a_message_then_call_items() {
        let completion = json!({"model": "gpt-4.1", "choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Running it.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}},
                {"id": "call_2", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"}}]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4}}});
        let (json, notes) =
            response_from_completion(&skeleton(), &serde_json::to_vec(&completion).unwrap())
                .unwrap();
        let response: Value = serde_json::from_slice(&json).unwrap();
        assert!(notes.is_empty());
        assert_eq!(response["status"], "completed");
        assert_eq!(response["model"], "gpt-4.1");
        let output = response["output"].as_array().unwrap();
        assert_eq!(output[0]["content"][0]["text"], "Running it.");
        assert_eq!(output[1]["type"], "function_call");
        assert_eq!(output[1]["call_id"], "call_1");
        assert_eq!(output[2]["type"], "custom_tool_call");
        assert_eq!(output[2]["input"], "*** Begin Patch");
        assert_eq!(
            response["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0}, "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15})
        );
    }

    #[test]
    fn a_completion_cut_for_length_is_incomplete_for_max_output_tokens() {
        let completion = json!({"model": "m", "choices": [{"finish_reason": "length",
            "message": {"role": "assistant", "content": "Partial"}}]});
        let (json, _) =
            response_from_completion(&skeleton(), &serde_json::to_vec(&completion).unwrap())
                .unwrap();
        let response: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(response["status"], "incomplete");
        assert_eq!(
            response["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        // No usage from the target: estimated from the prompt and the text.
        assert_eq!(response["usage"]["input_tokens"], 10);
        assert_eq!(response["usage"]["output_tokens"], 2);
    }
}
