"""The growth path: ordered stages (进入 学习 实践 实战 提升 分享 自我实现), each with
criteria over facts of commerce and community; a member's stage and next step."""
