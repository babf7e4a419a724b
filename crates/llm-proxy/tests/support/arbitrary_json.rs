/// JSON of every kind, with keys that the API formats use, nested a few levels.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|n| json!(n)),
        prop_oneof![
            Just("choices".to_owned()),
            Just("message".to_owned()),
            Just("stop".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("choices"),
        Just("message"),
        Just("content"),
        Just("delta"),
        Just("usage"),
        Just("type"),
        Just("candidates"),
        Just("parts"),
        Just("text"),
        Just("tool_calls"),
        Just("function"),
        Just("arguments"),
        Just("finish_reason"),
        Just("done"),
        Just("error"),
        Just("model"),
        Just("id"),
        Just("index"),
        Just("generated_text"),
        Just("output"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map(keys.clone().prop_map(str::to_owned), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
