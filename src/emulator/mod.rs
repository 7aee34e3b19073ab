//! A built-in emulator of Zhipu's GLM API, for `glm-gateway demo` and the tests.
