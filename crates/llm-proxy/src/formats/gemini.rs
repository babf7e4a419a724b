//! Google's Gemini API as a target: an OpenAI chat request written as a `generateContent`
//! request, and its answers, stream events and errors read back in the canonical terms.

use crate::formats::answer::{
    Event, ForeignError, Stamp, completion, finish_reason, message, tool_call, usage,
};
use serde::Serialize;
use std::borrow::Cow;

use serde_json::{Map, Value, json};

use super::chat::{
    ChatRequest, Content, Message, Part, ResponseFormat, Role, Tool, ToolChoice, Translated,
    Untranslatable, arguments_object, check_function_tool, data_url, drop_or_refuse, function_role,
    image_needs_data, note_message_extras, text_of, unsupported_part,
};

const API: &str = "a Gemini target (TARGET_API=gemini)";
/// Thinking budgets for OpenAI's `reasoning_effort` (Gemini 2.5 Flash takes 0 to 24,576).
const THINKING_BUDGETS: [(&str, u64); 5] = [
    ("none", 0),
    ("minimal", 0),
    ("low", 1024),
    ("medium", 8192),
    ("high", 24_576),
];

/// `chat` as a `generateContent` request (`streamGenerateContent` with SSE when it streams),
/// or the parameter it cannot express.
pub fn request(chat: ChatRequest) -> Result<Translated, Untranslatable> {
    let mut dropped = Vec::new();
    let model = model_path(&chat.model)?;
    let mut extra = chat.extra;
    let mut config = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            config.insert(name.to_owned(), value);
        }
    };
    set("temperature", chat.temperature.map(Value::from));
    set("topP", chat.top_p.map(Value::from));
    set("topK", extra.remove("top_k"));
    set(
        "maxOutputTokens",
        chat.max_completion_tokens
            .or(chat.max_tokens)
            .map(Value::from),
    );
    set(
        "stopSequences",
        chat.stop.map(|stop| Value::from(stop.into_vec())),
    );
    match extra.remove("n") {
        Some(n) if n.as_u64().is_some_and(|n| n > 1) && chat.stream == Some(true) => {
            return Err(Untranslatable::new(
                "n",
                format!("n > 1 cannot be streamed from {API}: ask for whole answers, or one."),
            ));
        }
        n => set("candidateCount", n.filter(|n| n != 1)),
    }
    set("seed", extra.remove("seed"));
    set("presencePenalty", extra.remove("presence_penalty"));
    set("frequencyPenalty", extra.remove("frequency_penalty"));
    if let Some(format) = extra.remove("response_format") {
        match ResponseFormat::read(&format)? {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => set("responseMimeType", Some(json!("application/json"))),
            ResponseFormat::JsonSchema(schema) => {
                set("responseMimeType", Some(json!("application/json")));
                // JSON Schema as OpenAI clients write it; `responseSchema` takes only a subset.
                set("responseJsonSchema", Some(schema));
            }
        }
    }
    if let Some(effort) = chat.reasoning_effort {
        let budget = THINKING_BUDGETS
            .iter()
            .find(|(name, _)| *name == effort)
            .ok_or_else(|| {
                Untranslatable::new(
                    "reasoning_effort",
                    format!("Invalid value for 'reasoning_effort': '{effort}'."),
                )
            })?
            .1;
        set("thinkingConfig", Some(json!({"thinkingBudget": budget})));
    }
    drop_or_refuse(&extra, API, &mut dropped)?;
    if chat.user.is_some() {
        dropped.push("user".to_owned());
    }
    if chat.parallel_tool_calls.is_some() {
        dropped.push("parallel_tool_calls".to_owned());
    }
    let (system_instruction, contents) = conversation(chat.messages, &mut dropped)?;
    let tools = chat
        .tools
        .map(|tools| translate_tools(tools, &mut dropped))
        .transpose()?;
    let tool_config = chat.tool_choice.map(translate_tool_choice).transpose()?;
    let request = GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config: config,
    };
    let body = serde_json::to_vec(&request).map_err(|e| Untranslatable::unreadable(&e))?;
    let path = if chat.stream == Some(true) {
        format!("/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/models/{model}:generateContent")
    };
    Ok(Translated {
        path,
        body,
        dropped,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest {
    contents: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Instruction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<[Value; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    generation_config: Map<String, Value>,
}

#[derive(Serialize)]
struct Turn {
    role: &'static str,
    parts: Vec<Value>,
}

#[derive(Serialize)]
struct Instruction {
    parts: Vec<Value>,
}

/// The model as it goes in the URL path: `models/` is the path's own prefix, and nothing that
/// could reach another path (`/`, `?`, `:`...) gets in.
fn model_path(model: &str) -> Result<&str, Untranslatable> {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let fits = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if fits {
        Ok(name)
    } else {
        Err(Untranslatable::new(
            "model",
            format!(
                "The model '{model}' cannot be sent to {API}: a Gemini model name has only letters, digits, '-', '.' and '_'."
            ),
        ))
    }
}

/// The system instruction and the turns. Consecutive messages of one role become one turn;
/// function responses take the order of the calls they answer, as Gemini pairs them by order.
fn conversation(
    messages: Vec<Message>,
    dropped: &mut Vec<String>,
) -> Result<(Option<Instruction>, Vec<Turn>), Untranslatable> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    // Every call so far: its id and function name, in order.
    let mut calls: Vec<(String, String)> = Vec::new();
    // The position in `calls` of each function response of the last turn, to order them.
    let mut answered: Vec<usize> = Vec::new();
    for (i, message) in messages.into_iter().enumerate() {
        note_message_extras(i, &message, dropped);
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                let text = text_of(i, message.content.as_ref(), "A system message", API)?;
                system.extend(text_part(text));
                continue;
            }
            Role::User => ("user", user_parts(i, message.content)?),
            Role::Assistant => ("model", model_parts(i, message, &mut calls)?),
            Role::Tool => {
                let (position, part) = function_response(i, message, &calls)?;
                if turns.last().is_none_or(|last| last.role != "user") {
                    answered.clear();
                }
                let turn = open_turn(&mut turns, "user");
                let at = answered.partition_point(|&p| p <= position);
                answered.insert(at, position);
                turn.parts.insert(at, part);
                continue;
            }
            Role::Function => return Err(function_role(i, API)),
        };
        if parts.is_empty() {
            continue;
        }
        open_turn(&mut turns, role).parts.extend(parts);
    }
    let system = (!system.is_empty()).then_some(Instruction { parts: system });
    Ok((system, turns))
}

/// The last turn when it is `role`'s, else a new one.
fn open_turn<'a>(turns: &'a mut Vec<Turn>, role: &'static str) -> &'a mut Turn {
    if turns.last().is_none_or(|last| last.role != role) {
        turns.push(Turn {
            role,
            parts: Vec::new(),
        });
    }
    let last = turns.len() - 1;
    &mut turns[last]
}

/// Gemini refuses empty text parts; an empty text says nothing, so it goes.
fn text_part(text: String) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"text": text}))
}

fn user_parts(i: usize, content: Option<Content>) -> Result<Vec<Value>, Untranslatable> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(text_part(text).into_iter().collect()),
        Some(Content::Parts(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    Part::Text { text } => out.extend(text_part(text)),
                    Part::ImageUrl { image_url } => {
                        let (mime_type, data) =
                            data_url(&image_url.url).ok_or_else(|| image_needs_data(i, j, API))?;
                        out.push(json!({"inlineData": {"mimeType": mime_type, "data": data}}));
                    }
                    Part::Other(other) => return Err(unsupported_part(i, j, &other, API)),
                }
            }
            Ok(out)
        }
    }
}

fn model_parts(
    i: usize,
    message: Message,
    calls: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, Untranslatable> {
    let text = text_of(i, message.content.as_ref(), "An assistant message", API)?;
    let mut parts: Vec<Value> = text_part(text).into_iter().collect();
    for (k, call) in message.tool_calls.into_iter().flatten().enumerate() {
        let args = arguments_object(i, k, &call, API)?;
        parts.push(json!({"functionCall": {"name": call.function.name, "args": args}}));
        calls.push((call.id, call.function.name));
    }
    Ok(parts)
}

/// A tool message as a function response, and the position of the call it answers.
fn function_response(
    i: usize,
    message: Message,
    calls: &[(String, String)],
) -> Result<(usize, Value), Untranslatable> {
    let unmatched = || {
        Untranslatable::new(
            format!("messages[{i}].tool_call_id"),
            format!(
                "A tool message must answer an earlier assistant tool call by its tool_call_id to be sent to {API}."
            ),
        )
    };
    let id = message.tool_call_id.as_deref().ok_or_else(unmatched)?;
    let position = calls
        .iter()
        .rposition(|(call, _)| call == id)
        .ok_or_else(unmatched)?;
    let text = text_of(i, message.content.as_ref(), "A tool result", API)?;
    // Gemini takes a JSON object; a tool's JSON object answer goes as it is.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({"content": text}),
    };
    let name = &calls[position].1;
    Ok((
        position,
        json!({"functionResponse": {"name": name, "response": response}}),
    ))
}

fn translate_tools(
    tools: Vec<Tool>,
    dropped: &mut Vec<String>,
) -> Result<[Value; 1], Untranslatable> {
    let declarations = tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            check_function_tool(i, &tool, API)?;
            let function = tool.function;
            if function.extra.contains_key("strict") {
                dropped.push(format!("tools[{i}].function.strict"));
            }
            let mut out = json!({"name": function.name});
            if let Some(description) = function.description {
                out["description"] = Value::String(description);
            }
            // JSON Schema as clients write it; `parameters` takes only OpenAPI's subset.
            if let Some(schema) = function.parameters {
                out["parametersJsonSchema"] = schema;
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok([json!({"functionDeclarations": declarations})])
}

fn translate_tool_choice(choice: ToolChoice) -> Result<Value, Untranslatable> {
    let config = match choice {
        ToolChoice::Mode(mode) => match mode.as_str() {
            "none" => json!({"mode": "NONE"}),
            "auto" => json!({"mode": "AUTO"}),
            "required" => json!({"mode": "ANY"}),
            other => {
                return Err(Untranslatable::new(
                    "tool_choice",
                    format!("Invalid value for 'tool_choice': '{other}'."),
                ));
            }
        },
        ToolChoice::Named { function } => {
            json!({"mode": "ANY", "allowedFunctionNames": [function.name]})
        }
    };
    Ok(json!({"functionCallingConfig": config}))
}

/// A `generateContent` answer as a chat completion.
pub fn answer(v: &Value, stamp: &Stamp) -> Value {
    let u = &v["usageMetadata"];
    let usage = usage(u["promptTokenCount"].as_u64(), output_tokens(u));
    let id = v.get("responseId");
    let model = v.get("modelVersion");
    let Some(candidates) = v["candidates"].as_array().filter(|c| !c.is_empty()) else {
        let reason = v
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let mut answer = completion(
            id,
            model,
            message(None, vec![], None),
            "content_filter",
            usage,
            stamp,
        );
        answer["choices"][0]["message"]["refusal"] =
            json!(format!("The prompt was blocked ({reason})."));
        return answer;
    };
    let (first, finish) = candidate_message(&candidates[0], stamp, 0);
    let mut answer = completion(id, model, first, finish, usage, stamp);
    // More than one candidate when the client asked for `n` (candidateCount).
    for (i, candidate) in candidates.iter().enumerate().skip(1) {
        let (message, finish) = candidate_message(candidate, stamp, i);
        if let Some(choices) = answer["choices"].as_array_mut() {
            choices.push(
                json!({"index": candidate["index"].as_u64().unwrap_or(i as u64),
                "message": message, "logprobs": null, "finish_reason": finish}),
            );
        }
    }
    answer
}

/// The tokens written: the candidates' and, for thinking models, the thoughts' (which Gemini
/// counts apart, and OpenAI inside `completion_tokens`).
fn output_tokens(usage: &Value) -> Option<u64> {
    let candidates = usage["candidatesTokenCount"].as_u64();
    match usage["thoughtsTokenCount"].as_u64() {
        Some(thoughts) => Some(candidates.unwrap_or(0) + thoughts),
        None => candidates,
    }
}

/// The `i`-th candidate as a chat message, and its finish reason.
fn candidate_message(candidate: &Value, stamp: &Stamp, i: usize) -> (Value, &'static str) {
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text: String = parts
        .iter()
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    let thoughts: String = parts
        .iter()
        .filter(|p| p["thought"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .enumerate()
        .map(|(k, f)| {
            // Calls of later candidates numbered after the first's, so no two share an id.
            let fallback = stamp.call_id(i * 1000 + k);
            tool_call(f.get("id"), &f["name"], &f["args"], fallback)
        })
        .collect();
    let finish = if calls.is_empty() {
        finish_reason(candidate["finishReason"].as_str().unwrap_or("STOP"))
    } else {
        "tool_calls"
    };
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    (message(content, calls, Some(thoughts)), finish)
}

/// One event of a `streamGenerateContent` stream (a whole answer so far), in the canonical
/// terms.
pub fn stream_event<'a>(value: &'a Value, emit: &mut impl FnMut(Event<'a>)) {
    if let Some(message) = value.pointer("/error/message").and_then(Value::as_str) {
        emit(Event::Error(message));
        return;
    }
    if let Some(model) = value["modelVersion"].as_str() {
        emit(Event::Model(model));
    }
    let u = &value["usageMetadata"];
    if u.is_object() {
        emit(Event::Usage {
            prompt: u["promptTokenCount"].as_u64(),
            completion: output_tokens(u),
        });
    }
    if let Some(reason) = value
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        emit(Event::Blocked(reason));
        return;
    }
    let Some(candidate) = value["candidates"].get(0) else {
        return;
    };
    for part in candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(call) = part.get("functionCall") {
            emit(Event::ToolStart {
                key: None,
                id: call["id"].as_str(),
                name: call["name"].as_str().unwrap_or_default(),
                arguments: Cow::Owned(call["args"].to_string()),
            });
        } else if let Some(text) = part["text"].as_str() {
            emit(if part["thought"] == true {
                Event::Reasoning(text)
            } else {
                Event::Text(text)
            });
        }
    }
    if let Some(reason) = candidate["finishReason"].as_str() {
        emit(Event::PlainFinish(reason));
    }
}

/// An error in Google's envelope: `{"error":{"code","message","status"}}`.
pub fn error(value: &Value) -> Option<ForeignError> {
    let e = value.get("error").filter(|e| e["status"].is_string())?;
    Some(ForeignError::new(
        "google",
        e["message"].as_str()?,
        e["status"].as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(request: Value) -> Result<(String, Value, Vec<String>), Untranslatable> {
        let chat: ChatRequest = serde_json::from_value(request).unwrap();
        let translated = super::request(chat)?;
        Ok((
            translated.path,
            serde_json::from_slice(&translated.body).unwrap(),
            translated.dropped,
        ))
    }

    #[test]
    fn system_messages_become_the_system_instruction_and_assistant_turns_model_turns() {
        let (path, out, _) = translate(json!({"model": "models/gemini-2.5-flash", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "Again"}, {"type": "text", "text": ""}]}]}))
        .unwrap();
        assert_eq!(path, "/models/gemini-2.5-flash:generateContent");
        assert_eq!(
            out["systemInstruction"],
            json!({"parts": [{"text": "Be brief."}, {"text": "Use metric units."}]})
        );
        assert_eq!(
            out["contents"],
            json!([{"role": "user", "parts": [{"text": "Hi"}]},
                   {"role": "model", "parts": [{"text": "Hello."}]},
                   {"role": "user", "parts": [{"text": "Again"}]}])
        );
        assert!(out.get("generationConfig").is_none());
    }

    #[test]
    fn a_stream_goes_to_stream_generate_content_with_sse() {
        let (path, out, dropped) = translate(json!({"model": "gemini-2.5-flash", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Hi"}]}))
        .unwrap();
        assert_eq!(
            path,
            "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert!(out.get("stream").is_none());
        assert!(dropped.is_empty());
    }

    #[test]
    fn function_responses_follow_their_calls_in_call_order_with_the_calls_names() {
        let (_, out, _) = translate(json!({"model": "g", "messages": [
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_2", "content": "{\"time\": \"10:00\"}"},
            {"role": "tool", "tool_call_id": "call_1", "content": "15C"}],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "additionalProperties": false}}},
                      {"type": "function", "function": {"name": "time", "description": "Now"}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}}}))
        .unwrap();
        assert_eq!(
            out["contents"][1],
            json!({"role": "model", "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "time", "args": {}}}]})
        );
        assert_eq!(
            out["contents"][2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "weather", "response": {"content": "15C"}}},
                {"functionResponse": {"name": "time", "response": {"time": "10:00"}}}]})
        );
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [
                {"name": "weather", "parametersJsonSchema": {"type": "object", "additionalProperties": false}},
                {"name": "time", "description": "Now"}]}])
        );
        assert_eq!(
            out["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
        );
    }

    #[test]
    fn a_tool_message_answering_no_earlier_call_is_refused() {
        let err = translate(json!({"model": "g", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_9", "content": "15C"}]}))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[1].tool_call_id"));
    }

    #[test]
    fn sampling_json_mode_and_effort_go_in_the_generation_config() {
        let (_, out, dropped) = translate(json!({"model": "g", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 100, "stop": ["END"], "n": 2,
            "seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.25, "reasoning_effort": "low",
            "user": "u-1", "store": false,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}}}))
        .unwrap();
        assert_eq!(
            out["generationConfig"],
            json!({"temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 100,
                   "stopSequences": ["END"], "candidateCount": 2, "seed": 7, "presencePenalty": 0.5,
                   "frequencyPenalty": 0.25, "responseMimeType": "application/json",
                   "responseJsonSchema": {"type": "object"}, "thinkingConfig": {"thinkingBudget": 1024}})
        );
        assert_eq!(dropped, vec!["store".to_owned(), "user".to_owned()]);
    }

    #[test]
    fn images_go_inline_and_an_image_url_is_refused() {
        let (_, out, _) = translate(
            json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
        )
        .unwrap();
        assert_eq!(
            out["contents"][0]["parts"][0],
            json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
        );
        let err = translate(
            json!({"model": "g", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]}),
        )
        .unwrap_err();
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[0].image_url.url")
        );
    }

    #[test]
    fn what_gemini_cannot_express_is_refused_naming_the_parameter() {
        let user = json!([{"role": "user", "content": "x"}]);
        for (field, value) in [
            ("logprobs", json!(true)),
            ("top_logprobs", json!(2)),
            ("logit_bias", json!({"50256": -100})),
            ("audio", json!({"voice": "alloy", "format": "wav"})),
            ("frobnicate", json!(1)),
        ] {
            let mut request = json!({"model": "g", "messages": user});
            request[field] = value;
            let err = translate(request).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(field));
            assert!(err.message.contains("TARGET_API=gemini"), "{}", err.message);
        }
        for model in [
            "",
            "a/b",
            "x:generateContent",
            "m?alt=json",
            "../models",
            "a b",
        ] {
            let err = translate(json!({"model": model, "messages": user})).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("model"), "{model}");
        }
    }
}
