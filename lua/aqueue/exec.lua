-- aqueue.exec (to be written)
return {}
