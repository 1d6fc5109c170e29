//! WIT-like text of what a module imports and exports, for `module.imports()` and
//! `module.exports()`: `func(name: string) -> string`, `instance { greet: func(...) }`, or a
//! core type such as `func (i32, i32) -> i32`. Component types print structurally (wasmtime
//! does not keep the names WIT gave records and variants); resources by the name their
//! interface exports them under (`own<counter>`).

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{ResourceType, Type};
use wasmtime::{Engine, ExternType};

/// The resources an interface declares, by type, to name them in its functions' types.
type Names<'a> = [(ResourceType, &'a str)];

/// A component item as text.
pub fn item(engine: &Engine, item: &ComponentItem) -> String {
    item_named(engine, item, &[])
}

fn item_named(engine: &Engine, item: &ComponentItem, names: &Names) -> String {
    match item {
        ComponentItem::ComponentFunc(func) => function_named(func, names),
        ComponentItem::ComponentInstance(instance) => {
            let members: Vec<(&str, ComponentItem)> = instance
                .exports(engine)
                .map(|(name, export)| (name, export.ty.clone()))
                .collect();
            let names: Vec<(ResourceType, &str)> = members
                .iter()
                .filter_map(|(name, item)| match item {
                    ComponentItem::Resource(ty) => Some((*ty, *name)),
                    _ => None,
                })
                .collect();
            let exports: Vec<String> = members
                .iter()
                .map(|(name, item)| format!("{name}: {}", item_named(engine, item, &names)))
                .collect();
            format!("instance {{ {} }}", exports.join("; "))
        }
        ComponentItem::CoreFunc(_) => "core func".to_string(),
        ComponentItem::Module(_) => "module".to_string(),
        ComponentItem::Component(_) => "component".to_string(),
        ComponentItem::Type(ty) => format!("type {}", value(ty)),
        ComponentItem::Resource(_) => "resource".to_string(),
    }
}

/// `func(a: u32, b: string) -> list<u8>`.
fn function_named(func: &ComponentFunc, names: &Names) -> String {
    let params: Vec<String> = func
        .params()
        .map(|(name, ty)| format!("{name}: {}", value_named(&ty, names)))
        .collect();
    let results: Vec<String> = func.results().map(|ty| value_named(&ty, names)).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        [one] => format!("func({}) -> {one}", params.join(", ")),
        many => format!("func({}) -> ({})", params.join(", "), many.join(", ")),
    }
}

/// A component value type as WIT writes it, structurally.
pub fn value(ty: &Type) -> String {
    value_named(ty, &[])
}

fn value_named(ty: &Type, names: &Names) -> String {
    let value = |ty: &Type| value_named(ty, names);
    let resource = |ty: &ResourceType| {
        names
            .iter()
            .find(|(of, _)| of == ty)
            .map_or("resource", |(_, name)| *name)
            .to_string()
    };
    let list = |items: Vec<String>| items.join(", ");
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", value(&l.ty())),
        Type::Record(r) => format!(
            "record {{ {} }}",
            list(
                r.fields()
                    .map(|f| format!("{}: {}", f.name, value(&f.ty)))
                    .collect()
            )
        ),
        Type::Tuple(t) => format!("tuple<{}>", list(t.types().map(|t| value(&t)).collect())),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            list(
                v.cases()
                    .map(|c| match &c.ty {
                        Some(ty) => format!("{}({})", c.name, value(ty)),
                        None => c.name.to_string(),
                    })
                    .collect()
            )
        ),
        Type::Enum(e) => format!(
            "enum {{ {} }}",
            list(e.names().map(str::to_string).collect())
        ),
        Type::Option(o) => format!("option<{}>", value(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", value(&ok)),
            (None, Some(err)) => format!("result<_, {}>", value(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", value(&ok), value(&err)),
        },
        Type::Flags(f) => format!(
            "flags {{ {} }}",
            list(f.names().map(str::to_string).collect())
        ),
        Type::Own(ty) => format!("own<{}>", resource(ty)),
        Type::Borrow(ty) => format!("borrow<{}>", resource(ty)),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Map(_) => "map".into(),
        Type::FixedLengthList(_) => "list (fixed length)".into(),
    }
}

/// A core module's import or export type: `func (i32) -> i32`, `memory (1 pages min)`, ...
pub fn core(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(func) => format!("func {}", crate::host_functions::signature(func)),
        ExternType::Memory(memory) => match memory.maximum() {
            Some(max) => format!("memory ({} to {max} pages)", memory.minimum()),
            None => format!("memory ({} pages min)", memory.minimum()),
        },
        ExternType::Table(table) => format!("table of {}", table.element()),
        ExternType::Global(global) => match global.mutability() {
            wasmtime::Mutability::Var => format!("global (mut {})", global.content()),
            wasmtime::Mutability::Const => format!("global {}", global.content()),
        },
        ExternType::Tag(_) => "tag".into(),
    }
}
