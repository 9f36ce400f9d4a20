"""Exam intake: files, zips, folders, the C-STORE listener, PACS query/retrieve."""
