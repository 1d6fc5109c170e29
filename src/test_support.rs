//! Unit tests only: the unit-test binary is an executable, not an addon that Node loads, so
//! the Node-API functions the addon calls directly are not there to link against. The tests
//! never call them; these stand-ins let the binary link, and abort if ever reached.

macro_rules! absent {
    ($($name:ident),* $(,)?) => {
        $(
            #[no_mangle]
            extern "C" fn $name() {
                panic!(concat!(stringify!($name), " is Node's; unit tests cannot call it"));
            }
        )*
    };
}

absent!(napi_delete_reference, napi_release_threadsafe_function);
