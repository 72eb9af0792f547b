//! `#[derive(Equivalence)]`: marks a `#[repr(C)]` struct of plain-data fields as a type
//! zerorank may send as raw bytes.
//!
//! The derive checks at compile time that the struct is `#[repr(C)]` (or
//! `#[repr(transparent)]`), that every field is itself `Equivalence`, and that the struct
//! has no padding (its size is the sum of its fields' sizes), so every byte sent is
//! initialised and every byte pattern received is a valid value.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields};

/// Derive `zerorank::datatype::Equivalence` for a padding-free `#[repr(C)]` struct.
#[proc_macro_derive(Equivalence)]
pub fn derive_equivalence(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let repr_ok = input.attrs.iter().any(|a| {
        a.path().is_ident("repr") && {
            let mut ok = false;
            let _ = a.parse_nested_meta(|m| {
                if m.path.is_ident("C") || m.path.is_ident("transparent") {
                    ok = true;
                }
                Ok(())
            });
            ok
        }
    });
    if !repr_ok {
        return syn::Error::new_spanned(
            name,
            "derive(Equivalence) needs #[repr(C)] or #[repr(transparent)]",
        )
        .to_compile_error()
        .into();
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(f) => f.named.iter().map(|f| f.ty.clone()).collect::<Vec<_>>(),
            Fields::Unnamed(f) => f.unnamed.iter().map(|f| f.ty.clone()).collect(),
            Fields::Unit => Vec::new(),
        },
        _ => {
            return syn::Error::new_spanned(name, "derive(Equivalence) supports structs only")
                .to_compile_error()
                .into()
        }
    };
    if !input.generics.params.is_empty() {
        return syn::Error::new_spanned(
            &input.generics,
            "derive(Equivalence) does not support generic structs",
        )
        .to_compile_error()
        .into();
    }
    let expanded = quote! {
        const _: () = {
            fn assert_field_is_equivalence<T: ::zerorank::datatype::Equivalence>() {}
            #[allow(dead_code)]
            fn check() { #( assert_field_is_equivalence::<#fields>(); )* }
            assert!(
                ::core::mem::size_of::<#name>() == 0 #( + ::core::mem::size_of::<#fields>() )*,
                concat!("derive(Equivalence): ", stringify!(#name), " has padding; add explicit padding fields")
            );
        };
        // SAFETY: repr(C)/transparent, every field is Equivalence and there is no padding
        // (checked above at compile time), so the type is plain bytes both ways.
        unsafe impl ::zerorank::datatype::Equivalence for #name {}
    };
    expanded.into()
}
