"""trialship.jobs"""
