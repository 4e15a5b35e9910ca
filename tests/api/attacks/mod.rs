//! The attack catalogue (issue 19): each hole a hostile tenant could use, tried through the
//! real server, and refused.

mod outbound;
