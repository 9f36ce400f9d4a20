"""trialship.deid"""
