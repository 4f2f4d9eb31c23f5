package mongoshim

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Server error codes (MongoDB's error_codes.yml).
const (
	codeInternalError             = 1
	codeBadValue                  = 2
	codeNoSuchKey                 = 4
	codeUnauthorized              = 13
	codeFailedToParse             = 9
	codeTypeMismatch              = 14
	codeIllegalOperation          = 20
	codeAlreadyInitialized        = 23
	codeNamespaceNotFound         = 26
	codeIndexNotFound             = 27
	codeCursorNotFound            = 43
	codeNoMatchingDocument        = 47
	codeNamespaceExists           = 48
	codeCommandNotFound           = 59
	codeInvalidNamespace          = 73
	codeInvalidOptions            = 72
	codeCommandNotSupportedOnView = 166
	codeProtocolError             = 17
	codeNoSuchTransaction         = 251
	codeInvalidResumeToken        = 260
	codeChangeStreamHistoryLost   = 286
	codeUserWritesBlocked         = 371
)

var codeNames = map[int32]string{
	codeInternalError:             "InternalError",
	codeBadValue:                  "BadValue",
	codeNoSuchKey:                 "NoSuchKey",
	codeUnauthorized:              "Unauthorized",
	codeFailedToParse:             "FailedToParse",
	codeTypeMismatch:              "TypeMismatch",
	codeIllegalOperation:          "IllegalOperation",
	codeAlreadyInitialized:        "AlreadyInitialized",
	codeNamespaceNotFound:         "NamespaceNotFound",
	codeIndexNotFound:             "IndexNotFound",
	codeCursorNotFound:            "CursorNotFound",
	codeNoMatchingDocument:        "NoMatchingDocument",
	codeNamespaceExists:           "NamespaceExists",
	codeCommandNotFound:           "CommandNotFound",
	codeInvalidNamespace:          "InvalidNamespace",
	codeInvalidOptions:            "InvalidOptions",
	codeCommandNotSupportedOnView: "CommandNotSupportedOnView",
	codeProtocolError:             "ProtocolError",
	codeNoSuchTransaction:         "NoSuchTransaction",
	codeInvalidResumeToken:        "InvalidResumeToken",
	codeChangeStreamHistoryLost:   "ChangeStreamHistoryLost",
	codeUserWritesBlocked:         "UserWritesBlocked",
	// codes tests give fail points (the driver's retryable and resumable
	// errors), so that their replies carry MongoDB's codeName
	6: "HostUnreachable", 7: "HostNotFound", 50: "MaxTimeMSExpired", 89: "NetworkTimeout",
	91: "ShutdownInProgress", 112: "WriteConflict", 133: "FailedToSatisfyReadPreference",
	189: "PrimarySteppedDown", 234: "RetryChangeStream", 262: "ExceededTimeLimit",
	280: "ChangeStreamFatalError", 9001: "SocketException", 10107: "NotWritablePrimary",
	11600: "InterruptedAtShutdown", 11602: "InterruptedDueToReplStateChange",
	13435: "NotPrimaryNoSecondaryOk", 13436: "NotPrimaryOrSecondary", 13388: "StaleConfig",
	63: "StaleShardVersion", 150: "StaleEpoch", 24: "LockTimeout",
}

// shimErr builds a command error.
func shimErr(code int32, msg string, labels ...string) *cmdErr {
	return &cmdErr{Code: code, CodeName: codeNames[code], Msg: msg, Labels: labels}
}

// errReply is {ok: 0, errmsg, code, codeName}.
func errReply(code int32, msg string, labels ...string) bson.Raw {
	return errReplyNamed(code, codeNames[code], msg, labels...)
}

func errReplyNamed(code int32, name, msg string, labels ...string) bson.Raw {
	d := bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: msg}, {Key: "code", Value: code}, {Key: "codeName", Value: name}}
	if len(labels) > 0 {
		d = append(d, bson.E{Key: "errorLabels", Value: labels})
	}
	return mustRaw(d)
}

// errorReply turns an error into a reply: a backend {ok: 0} verbatim (minus
// its cluster time fields), a shim error as built, anything else as
// InternalError.
func errorReply(err error) bson.Raw {
	var ce *cmdErr
	if errors.As(err, &ce) {
		if ce.Raw != nil && len(ce.Labels) == 0 {
			return ce.Raw
		}
		name := ce.CodeName
		if name == "" {
			name = codeNames[ce.Code]
		}
		return errReplyNamed(ce.Code, name, ce.Msg, ce.Labels...)
	}
	return errReply(codeInternalError, err.Error())
}
