//! Zhipu's error replies: the `{"error":{"code","message"}}` body with the status real Zhipu
//! uses for each code, and the Spring-style 404 that unknown paths get.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// One Zhipu business error, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ZhipuError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ZhipuError {
    /// An error with the status real Zhipu pairs with `code`.
    pub(crate) fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            status: status_for(code),
            code,
            message: message.into(),
        }
    }

    /// An error with Zhipu's usual wording for `code`.
    pub(crate) fn from_code(code: u32) -> Self {
        Self::new(code, message_for(code))
    }

    /// 1214: a known parameter with a bad value; the message names the parameter.
    pub(crate) fn invalid(param: &str, detail: &str) -> Self {
        Self::new(1214, format!("{param}参数非法 ({detail})"))
    }

    /// 1210: a parameter the API does not know.
    pub(crate) fn unknown(param: &str) -> Self {
        Self::new(1210, format!("不支持的参数: {param}"))
    }

    /// 1213: a required parameter is absent.
    pub(crate) fn missing(param: &str) -> Self {
        Self::new(1213, format!("未正常接收到参数: {param}"))
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for ZhipuError {
    fn into_response(self) -> Response {
        let error = json!({"code": self.code.to_string(), "message": self.message});
        let body = if self.code == 1301 {
            json!({"error": error, "contentFilter": [{"level": 1, "role": "user"}]})
        } else {
            json!({ "error": error })
        };
        (self.status, Json(body)).into_response()
    }
}

/// Zhipu answers balance, quota and concurrency problems with 429, not 402/403.
pub(crate) fn status_for(code: u32) -> StatusCode {
    match code {
        1000..=1004 => StatusCode::UNAUTHORIZED,
        1113 | 1302 | 1303 | 1304 | 1305 | 1308 | 1310 | 1313 => StatusCode::TOO_MANY_REQUESTS,
        1230 | 1234 => StatusCode::INTERNAL_SERVER_ERROR,
        1220 => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn message_for(code: u32) -> &'static str {
    match code {
        1000 => "身份验证失败。",
        1001 => "Header中未收到Authorization参数，无法进行身份验证。",
        1002 => "Authorization Token非法，请确认Authorization Token正确传递。",
        1003 => "Authorization Token已过期。",
        1004 => "提供的身份验证令牌未通过验证。",
        1110 => "您的账户当前处于非活动状态，请检查账户信息。",
        1111 => "您的账户不存在。",
        1112 => "您的账户已被锁定，请联系客服解锁。",
        1113 => "您的账户已欠费，请充值后重试。",
        1120 => "无法成功访问您的账户，请联系客服解决。",
        1210 => "API 调用参数有误，请检查文档。",
        1211 => "模型不存在，请检查模型代码。",
        1212 => "当前模型不支持该调用方式。",
        1213 => "未正常接收到参数。",
        1214 => "参数非法，请检查文档。",
        1215 => "参数冲突，请检查文档。",
        1220 => "您无权访问该API。",
        1221 => "API 已下线。",
        1222 => "API 不存在。",
        1230 => "API 调用流程出错。",
        1231 => "request_id重复",
        1234 => "网络错误，请稍后重试",
        1261 => "Prompt exceeds max length",
        1301 => "系统检测到输入或生成内容可能包含不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。",
        1302 => "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
        1303 => "您当前使用该API的频率过高，请降低频率，或联系客服增加限额。",
        1304 => "该API的今日调用次数限额已用完，请明天再试，或联系客服增加限额。",
        1305 => "当前API请求过多，请稍后重试。",
        1308 => "已达到当前时段的使用上限，请稍后重试。",
        1310 => "已达到每周/每月使用上限。",
        1313 => "您的账户因违反公平使用政策已被限制使用。",
        _ => "服务异常，请稍后重试。",
    }
}

/// The body Zhipu's Spring front end sends for a path (or method) it does not route.
pub(crate) fn spring_not_found(path: &str) -> Response {
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+00:00");
    let body = json!({
        "timestamp": timestamp.to_string(),
        "status": 404,
        "error": "Not Found",
        "path": path,
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_zhipu() {
        assert_eq!(status_for(1003), StatusCode::UNAUTHORIZED);
        assert_eq!(status_for(1113), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status_for(1234), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_for(1220), StatusCode::FORBIDDEN);
        assert_eq!(status_for(1261), StatusCode::BAD_REQUEST);
    }
}
